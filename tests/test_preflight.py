"""Bad input fails fast: `python -m gadlib.reproduce` checks every input before the first kernel
starts and answers with one line, `error: ...`, and exit code 2 (issue #13's table, row by row)."""

import os
import warnings

import papermill
import pytest
import torch
from PIL import Image

from gadlib import reproduce
from gadlib.errors import GADWarning


class KernelStarted(Exception):
    pass


class _NoKernel:
    """Stands in for the runner's warmed kernels here: these tests stop at the first notebook,
    and a real kernel would only add its start-up and warm-up to every test."""

    did_not_start = False  # it "answered": a dead kernel here is one that ran its notebook

    def __init__(self, *args, **kwargs):
        pass

    def wait(self):
        return None

    def close(self):
        pass


@pytest.fixture(autouse=True)
def no_kernels(monkeypatch):
    from gadlib import kernels

    monkeypatch.setattr(kernels, "WarmKernel", _NoKernel)
    monkeypatch.setenv("GAD_FORK_KERNELS", "0")  # nor a fork server (gadlib/forkkernel.py) importing torch


@pytest.fixture
def runner(tmp_path, monkeypatch, capsys):
    """Run the command line; a notebook start raises KernelStarted (with its parameters).
    Returns the exit code, stderr and the files the command left under the runs and figures
    folders."""
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAD_FIGURES_DIR", str(tmp_path / "figures"))

    def no_kernel(*args, parameters=None, **kwargs):
        raise KernelStarted(parameters)

    monkeypatch.setattr(papermill, "execute_notebook", no_kernel)

    def run(*argv):
        code = reproduce.main(["--profile", "smoke", *argv])
        captured = capsys.readouterr()
        run.out = captured.out  # what the console was told besides the error
        err = captured.err.strip()
        return code, err, sorted(str(f) for d in ("runs", "figures") for f in (tmp_path / d).rglob("*"))

    return run


def _pets(root, counts=(6, 6), names=("cats", "dogs")):
    for name, n in zip(names, counts):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (20, 20), (i * 20, 90, 40)).save(root / name / f"{i}.png")
    return root


def _fails_fast(result, match):
    code, err, written = result
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert match in err, err
    assert written == []  # refused before the run folder: nothing half-written


def test_missing_data_folder(runner, tmp_path):
    _fails_fast(runner("--dataset", "folder", "--data-dir", str(tmp_path / "nope")), "does not exist")


def test_class_folder_without_images(runner, tmp_path):
    root = _pets(tmp_path / "pets", counts=(6, 0))
    (root / "dogs" / "notes.txt").write_text("not an image")
    _fails_fast(runner("--dataset", "folder", "--data-dir", str(root)), "class 'dogs' has no images")


def test_a_class_of_files_that_are_not_images_is_refused_before_the_run_folder(runner, tmp_path):
    """Every dog a text file saved as .jpg: refused in one line before anything is written (one
    such file among images is skipped later with a warning, test_loaders)."""
    root = _pets(tmp_path / "pets", counts=(6, 0))
    for i in range(6):
        (root / "dogs" / f"{i}.jpg").write_text("<html>not found</html>")
    _fails_fast(
        runner("--dataset", "folder", "--data-dir", str(root)), "class 'dogs' has no readable image: none of its 6"
    )
    (root / "dogs" / "6.png").unlink(missing_ok=True)
    Image.new("RGB", (20, 20)).save(root / "dogs" / "6.png")  # one that opens: on to the counts
    code, err, _ = runner("--dataset", "folder", "--data-dir", str(root), "-p", "n_eval=64")
    assert code == 2 and "no readable image" not in err and "n_eval=64" in err, err


def test_a_class_of_truncated_images_is_refused_before_the_run_folder(runner, tmp_path):
    """Every dog an interrupted download: the header opens, the pixels end early. Refused in one
    line before anything is written, as a class of files that do not open at all is."""
    import io

    root = _pets(tmp_path / "pets", counts=(6, 0))
    whole = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert("RGB").save(whole, "JPEG")  # its header a small share of it
    for i in range(6):
        (root / "dogs" / f"{i}.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with Image.open(root / "dogs" / "0.jpg"):  # its header alone is readable
        pass
    _fails_fast(
        runner("--dataset", "folder", "--data-dir", str(root)), "class 'dogs' has no readable image: none of its 6"
    )


def test_hidden_folders_are_not_classes_and_images_in_sub_folders_are_named(runner, tmp_path):
    from gadlib import GADInputError
    from gadlib.layouts import folder_files

    root = _pets(tmp_path / "pets")
    (root / ".ipynb_checkpoints").mkdir()  # what JupyterLab leaves; and a Mac archive's folder
    (root / "__MACOSX").mkdir()
    assert folder_files(root, None)[0] == ["cats", "dogs"]
    (root / "cats" / "persian").mkdir()
    Image.new("RGB", (20, 20)).save(root / "cats" / "persian" / "p.png")
    with pytest.warns(GADWarning, match="1 image\\(s\\) in sub-folders of class folder .*cats are not read"):
        folder_files(root, None)
    nested = _pets(tmp_path / "nested", counts=(6, 0))
    (nested / "dogs" / "terrier").mkdir()
    Image.new("RGB", (20, 20)).save(nested / "dogs" / "terrier" / "t.png")
    with pytest.raises(GADInputError, match="class 'dogs' has no images of its own, and 1 image"):
        folder_files(nested, None)


def test_three_class_folders(runner, tmp_path):
    root = _pets(tmp_path / "pets", counts=(6, 6, 6), names=("cats", "dogs", "birds"))
    _fails_fast(runner("--dataset", "folder", "--data-dir", str(root)), "exactly two class folders")


def test_a_class_with_three_images_names_the_counts(runner, tmp_path):
    root = _pets(tmp_path / "pets", counts=(3, 30))
    _fails_fast(runner("--dataset", "folder", "--data-dir", str(root)), "'cats' 1, 'dogs' 9 (of 'cats' 3, 'dogs' 30")


def test_unknown_architecture(runner):
    _fails_fast(runner("--archs", "alexnet"), "unknown architecture 'alexnet'")


def test_cub_folder_without_images_txt(runner, tmp_path):
    (tmp_path / "CUB_200_2011").mkdir()
    _fails_fast(runner("--dataset", "cub", "--data-dir", str(tmp_path / "CUB_200_2011")), "images.txt is missing")


@pytest.mark.parametrize(
    "param, match",
    [
        ("ig_steps=0", "ig_steps must be a whole number >= 1"),
        ("image_size=-4", "image_size must be a whole number >= 8"),
        ("train_epochs=0", "train_epochs must be a whole number >= 1"),
        ("hull_tau=1.5", "hull_tau must be in (0, 1]"),
        ("alphas=[]", "alphas is empty"),
        ("n_eval=7", "n_eval must be an even number"),
        ("methods=['gradcam']", "unknown attribution method 'gradcam'"),
        ("train_precision=fp16", "unknown train precision 'fp16': choose one of auto, fp32, bf16"),
        ("extra={'consensus_q': 0}", "consensus_q must be in (0, 1]"),
        ("extra=0.3", "-p extra= needs a dict"),
    ],
)
def test_bad_settings(runner, param, match):
    _fails_fast(runner("-p", param), match)


def test_a_setting_given_twice_is_refused_not_overwritten(runner):
    _fails_fast(runner("-p", "consensus_q=0.3", "-p", "extra={'consensus_q': 0.5}"), "consensus_q given twice")
    _fails_fast(runner("-p", "seed=1", "-p", "seed=2"), "seed given twice")


def test_a_device_this_machine_lacks_is_refused_before_the_first_notebook(runner):
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or the first where there is none
    _fails_fast(runner("-p", f"device={missing}"), f"device '{missing}' is not on this machine")


def test_checkpoint_that_is_not_a_pytorch_file(runner, tmp_path):
    (tmp_path / "mine.pt").write_text("garbage\n")
    _fails_fast(runner("--archs", "resnet18", "-p", f"checkpoint={tmp_path / 'mine.pt'}"), "is not a PyTorch file")


def test_a_warning_before_the_run_is_one_console_line(runner, tmp_path):
    """Said before the first notebook (images in a class's sub-folders), a warning is the console's
    "warning: ..." line, as the notebooks' warnings are, not Python's two-line warning format."""
    root = _pets(tmp_path / "pets")
    (root / "dogs" / "terrier").mkdir()
    Image.new("RGB", (20, 20)).save(root / "dogs" / "terrier" / "t.png")
    missing = tmp_path / "missing.pt"  # so that the run stops right after the check
    argv = ["--dataset", "folder", "--data-dir", str(root), "--archs", "resnet18", "-p", "n_eval=2"]
    code, err, _ = runner(*argv, "-p", f"checkpoint={missing}")
    out = runner.out
    assert code == 2 and "does not exist" in err
    assert "warning: 1 image(s) in sub-folders of class folder" in out and "GADWarning" not in out + err


def test_another_warning_before_the_run_is_shown_as_python_shows_it(runner, tmp_path, monkeypatch):
    """A warning not of gadlib's (torch's, PIL's, a user's model's) said before the first notebook
    is shown once, in Python's format, and the run goes on to its refusal (it once recorded itself
    again while the recorded list was read, without end)."""
    from gadlib import reproduce

    def warns_then_refuses(cfg, archs):
        warnings.warn("a library's own note", UserWarning, stacklevel=2)
        raise reproduce.GADInputError("refused after the note")

    monkeypatch.setattr(reproduce, "preflight", warns_then_refuses)
    with pytest.warns(UserWarning, match="a library's own note") as shown:
        code, err, _ = runner("--archs", "resnet18")
    assert code == 2 and err == "error: refused after the note" and len(shown) == 1


def test_a_list_of_bare_words_is_read_as_the_sweep_reads_it(runner, tmp_path):
    """-p classes=[cats, horses] is a list of two names (YAML), as in a sweep's grid, not the text
    '[cats, horses]'; a list that does not close is a one-line error with an example."""
    root = _pets(tmp_path / "pets")
    argv = ["--dataset", "folder", "--data-dir", str(root), "--archs", "resnet18"]
    _fails_fast(runner(*argv, "-p", "classes=[cats, horses]"), f"class folder {root / 'horses'} does not exist")
    _fails_fast(runner(*argv, "-p", "classes=[cats, dogs"), "-p 'classes=[cats, dogs' is not a list of values")


def test_an_empty_checkpoint_is_refused_not_taken_for_none(runner):
    """checkpoint= with nothing after it (an unset $CKPT) would otherwise train a classifier here."""
    _fails_fast(runner("--archs", "resnet18", "-p", "checkpoint="), "checkpoint is empty")


def test_arch_given_as_a_parameter_is_refused_not_dropped(runner):
    """Each notebook's arch comes from --archs; a -p arch=... would be overwritten without a word."""
    _fails_fast(runner("-p", "arch=vgg16"), "arch=vgg16 is set per notebook from --archs: give --archs vgg16")
    _fails_fast(runner("-p", "extra={'arch': 'vgg16'}"), "is set per notebook from --archs")


def test_an_architecture_named_twice_is_refused(runner):
    _fails_fast(runner("--archs", "resnet18", "resnet18"), "--archs names resnet18 twice")


def test_a_runs_folder_that_is_a_file_is_one_line(runner, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "a-file"))
    _fails_fast(runner(), f"the runs folder {tmp_path / 'a-file' / 'synthetic-smoke'} cannot be made: ")
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))  # a good runs folder: the figures folder's turn
    _fails_fast(runner("-p", f"figures_dir={tmp_path / 'a-file' / 'deeper'}"), "the figures folder")


def test_a_data_folder_without_dataset_folder_is_not_run_as_synthetic_data(runner, tmp_path):
    """make reproduce DATA_DIR=~/pets without DATASET=folder ran the synthetic data under the
    committed run's name, and reported it as the user's."""
    _fails_fast(runner("--data-dir", str(_pets(tmp_path / "pets"))), "add --dataset folder (make: DATASET=folder)")


def test_a_checkpoint_with_two_architectures(runner, tmp_path):
    from gadlib.models import build_model

    torch.save(build_model("resnet18", 2, 32).state_dict(), tmp_path / "r18.pt")
    _fails_fast(runner("-p", f"checkpoint={tmp_path / 'r18.pt'}"), "is one trained model but 2 architectures")
    # a whole model loads as any architecture: it would have run as resnet18 and as vgg16
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2)), tmp_path / "whole.pt")
    _fails_fast(runner("-p", f"checkpoint={tmp_path / 'whole.pt'}"), "is one trained model but 2 architectures")


def test_checkpoint_of_another_architecture(runner, tmp_path):
    from gadlib.models import build_model

    torch.save(build_model("resnet18", 2, 32).state_dict(), tmp_path / "r18.pt")
    _fails_fast(runner("--archs", "vgg16", "-p", f"checkpoint={tmp_path / 'r18.pt'}"), "does not fit a two-class vgg16")
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 5)), tmp_path / "five.pt")
    _fails_fast(runner("--archs", "resnet18", "-p", f"checkpoint={tmp_path / 'five.pt'}"), "a model with 5 outputs")


@pytest.mark.parametrize("form", ["extra={'consensus_q': 0.3}", "consensus_q=0.3"])
def test_documented_forms_of_extra_reach_the_notebooks(runner, form):
    with pytest.raises(KernelStarted) as started:
        runner("-p", form, "-p", "ig_steps=3")
    params = started.value.args[0]
    assert params["extra"] == {"consensus_q": 0.3} and params["ig_steps"] == 3


@pytest.mark.parametrize(
    "ename, evalue, code, match",
    [
        (
            "GADInputError",
            "class 'dogs' has no readable training images in /x: add images",
            2,
            "error: class 'dogs' has no readable training images in /x: add images",
        ),
        (
            "RuntimeError",
            "CUDA out of memory\nmore detail",
            1,
            "error: notebook 01_data failed in cell 3: RuntimeError: CUDA out of memory (the rest is in",
        ),
    ],
)
def test_an_error_inside_a_notebook_is_one_line(tmp_path, monkeypatch, capsys, ename, evalue, code, match):
    """The project's own error keeps its message and exit code 2; any other names the notebook,
    the cell and the executed copy to read."""
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAD_FIGURES_DIR", str(tmp_path / "figures"))

    def fails(*args, **kwargs):
        raise papermill.PapermillExecutionError(2, 3, "data = load_dataset(cfg)", ename, evalue, ["Traceback ..."])

    monkeypatch.setattr(papermill, "execute_notebook", fails)
    assert reproduce.main(["--profile", "smoke"]) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith(match) and "\n" not in err, err
    assert reproduce.main(["--profile", "smoke", "--verbose"]) == code
    assert "Traceback" in capsys.readouterr().err


def test_ctrl_c_stops_the_runner_in_one_line_and_frees_the_run_folder(tmp_path, monkeypatch, capsys):
    """Ctrl-C in a notebook: one line saying that what finished is kept and how to go on, the
    shell's status for SIGINT, and the run folder free for the same command again."""
    from gadlib import RunConfig, runfolder

    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAD_FIGURES_DIR", str(tmp_path / "figures"))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    assert reproduce.main(["--profile", "smoke"]) == 130
    assert capsys.readouterr().err == (
        "stopped (Ctrl-C): every finished stage is kept in its run folder; the same command resumes from there\n"
    )
    cfg = RunConfig.build(profile="smoke", runs_dir=tmp_path / "runs", figures_dir=tmp_path / "figures")
    assert not runfolder.holder_path(cfg.run_dir).exists()
    with runfolder.holding(cfg):  # the lock is free
        pass


def _documented_commands():
    """Every `make reproduce` and `python -m gadlib.reproduce` line in the README's code blocks."""
    from conftest import ROOT

    blocks = (ROOT / "README.md").read_text().split("```")[1::2]
    return [
        line.split("#")[0].strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith("make reproduce") or "-m gadlib.reproduce" in line
    ]


def test_the_readme_documents_the_command_forms_checked_below():
    """Else the parametrized test below would have no case, and pytest would skip it unseen."""
    assert len(_documented_commands()) >= 8


@pytest.mark.parametrize("line", _documented_commands())
def test_every_documented_command_form_is_understood(runner, line):
    """Through make's own expansion (make -n) to the runner's parser: each form reaches the
    first notebook, or stops only because the README's example folder is not on this machine."""
    import os
    import shlex
    import subprocess

    from conftest import ROOT

    line = line.replace("$q", "0.3")
    if line.startswith("make "):
        dry = subprocess.run(
            ["make", "-n", *shlex.split(line)[1:]], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.replace("\\\n", " ")
        line = next(cmd for cmd in dry.splitlines() if "-m gadlib.reproduce" in cmd)
    argv = [os.path.expanduser(a) for a in shlex.split(line)]
    argv = argv[argv.index("gadlib.reproduce") + 1 :]
    try:
        code, err, _ = runner(*argv)
    except KernelStarted:
        return
    assert code == 2 and "does not exist" in err, (line, err)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--dataset", "folder", "--data-dir", "/no/such/folder"], "data folder /no/such/folder does not exist"),
        (["-p", "ig_steps=0"], "ig_steps must be a whole number >= 1"),
        (["--archs", "alexnet"], "unknown architecture 'alexnet'"),
    ],
)
def test_a_fresh_process_answers_bad_input_before_importing_torch(argv, match):
    """The whole command in a fresh interpreter: settings and folders are checked before torch
    or Papermill is imported (importing them takes seconds), so the answer comes at once."""
    import subprocess
    import sys

    from conftest import ROOT

    code = (
        "import sys; from gadlib.reproduce import main\n"
        f"rc = main({argv!r})\n"
        "print(rc, *(m in sys.modules for m in ('torch', 'papermill', 'jupyter_client')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout == "2 False False False\n", (done.stdout, done.stderr)  # no torch, no Papermill, no kernel
    assert done.stderr.strip().startswith(f"error: {match}") and "\n" not in done.stderr.strip()


def test_a_kernel_that_dies_is_one_line_too(tmp_path, monkeypatch, capsys):
    from nbclient.exceptions import DeadKernelError

    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAD_FIGURES_DIR", str(tmp_path / "figures"))

    def dies(*args, **kwargs):
        raise DeadKernelError("Kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", dies)
    assert reproduce.main(["--profile", "smoke"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: notebook 01_data failed outside any cell (the kernel stopped;") and "\n" not in err, (
        err
    )


@pytest.mark.parametrize(
    "param, match",
    [
        ("n_eval=abc", "n_eval must be a whole number, got 'abc'"),
        ("consensus_q=1/3", "consensus_q must be a number, got '1/3'"),
        ("alphas=3", "alphas must be a list"),
        ("alphas=['a']", "alphas must be numbers, got 'a'"),
    ],
)
def test_values_of_the_wrong_type(runner, param, match):
    _fails_fast(runner("-p", param), match)


def test_a_notebook_parameter_given_in_extra_is_passed_once(runner):
    with pytest.raises(KernelStarted) as started:
        runner("-p", "extra={'image_size': 40, 'consensus_q': 0.3}")
    params = started.value.args[0]
    assert params["image_size"] == 40 and params["extra"] == {"consensus_q": 0.3}


def test_synthetic_n_eval_beyond_the_test_split(runner):
    _fails_fast(runner("-p", "n_eval=64"), "n_eval=64 needs 32 test images per class, but n_test=32 gives 16")


def _cub_release(root):
    (root / "images" / "001.A_Warbler").mkdir(parents=True)
    (root / "images.txt").write_text("1 001.A_Warbler/a.jpg\n")
    (root / "image_class_labels.txt").write_text("1 1\n")
    (root / "classes.txt").write_text("1 001.A_Warbler\n")
    (root / "train_test_split.txt").write_text("1 1\n")
    return root


def test_cub_folder_without_its_images_folder(runner, tmp_path):
    root = _cub_release(tmp_path / "CUB_200_2011")
    (root / "images" / "001.A_Warbler").rmdir()
    (root / "images").rmdir()
    _fails_fast(runner("--dataset", "cub", "--data-dir", str(root)), "CUB image folder")


def test_cub_table_that_is_not_the_release_format(runner, tmp_path):
    root = _cub_release(tmp_path / "CUB_200_2011")
    (root / "image_class_labels.txt").write_text("1 1\nthis line is not a row\n")
    _fails_fast(runner("--dataset", "cub", "--data-dir", str(root)), "image_class_labels.txt, line 2, is not")


def test_a_relative_path_reaches_the_notebooks_as_the_caller_reads_it(runner, tmp_path, monkeypatch):
    """The notebooks run inside notebooks/: run_chain (which sweeps and the alpha selection call
    with the user's settings) makes a relative checkpoint or data_dir absolute first, also in extra."""
    from gadlib.models import build_model

    (tmp_path / "mine").mkdir()
    torch.save(build_model("resnet18", 2, 32).state_dict(), tmp_path / "mine" / "r18.pt")
    monkeypatch.chdir(tmp_path)
    for params in ({"checkpoint": "mine/r18.pt"}, {"extra": {"checkpoint": "mine/r18.pt"}}):
        with pytest.raises(KernelStarted) as started:
            reproduce.run_chain({"profile": "smoke", **params}, ["resnet18"])
        given = started.value.args[0]
        assert given.get("checkpoint", given.get("extra", {}).get("checkpoint")) == str(tmp_path / "mine" / "r18.pt")
    # where the run goes, too: the runner holds and reads the folder the notebooks write
    with pytest.raises(KernelStarted) as started:
        reproduce.run_chain({"profile": "smoke", "extra": {"runs_dir": "out"}}, ["resnet18"])
    assert started.value.args[0]["extra"]["runs_dir"] == str(tmp_path / "out")
    assert (tmp_path / "out" / "synthetic-smoke").is_dir()  # the folder the runner locked
    monkeypatch.setenv("GAD_RUNS_DIR", "env-out")  # and a relative folder variable, which kernels inherit
    with pytest.raises(KernelStarted):
        reproduce.run_chain({"profile": "smoke"}, ["resnet18"])
    assert os.environ["GAD_RUNS_DIR"] == str(tmp_path / "env-out") and (tmp_path / "env-out").is_dir()


def test_a_misspelt_papermill_parameter_stops_the_notebook_in_one_line():
    """Papermill injects a -p name the parameters cell lacks as a variable of its own, with a
    warning it also gives for settings that do apply (runs_dir): a name of its injected cell that
    is no setting stops the notebook's setup instead of being ignored; the user's own variables
    (not injected) are theirs."""
    from gadlib import GADInputError, stages

    injected = "# Parameters\nig_step = 50\nepochs = 3\nruns_dir = None\n"
    namespace = {"profile": "smoke", "extra": {}, "ig_step": 50, "epochs": 3, "os": os, "runs_dir": None}
    with pytest.raises(
        GADInputError,
        match=r"unknown parameter\(s\) 'epochs' \(did you mean train_epochs\?\), 'ig_step' \(did you mean ig_steps\?\)",
    ) as err:
        stages.setup({**namespace, "In": ["", "import os", injected]})
    assert "\n" not in str(err.value)
    assert stages.injected_names({"In": ["", injected]}) == {"ig_step", "epochs", "runs_dir"}
    assert stages.injected_names({"seeds": [1, 2]}) == set()  # outside Papermill, or a user's variable


@pytest.mark.parametrize(
    "item, value",
    [
        ("ig_steps=50", 50),
        ("alphas=[2, 4]", [2, 4]),
        ("checkpoint=None", None),
        ("classes=[cats, dogs]", ["cats", "dogs"]),  # YAML: a list of bare words
        ("extra={'consensus_q': 0.3}", {"consensus_q": 0.3}),
        ("run_name=yes", "yes"),  # not YAML's True, nor 8 for 010, nor a date, nor cut at " #"
        ("run_name=010", "010"),
        ("run_name=2026-12-07", "2026-12-07"),
        ("run_name=try #2", "try #2"),
        ("data_dir=~/pets", "~/pets"),
        ("checkpoint=", ""),  # an unset variable: left for the setting's own refusal
    ],
)
def test_a_value_is_a_python_literal_a_yaml_list_or_the_text_as_typed(item, value):
    from gadlib.config import parse_value

    assert parse_value(item) == value and type(parse_value(item)) is type(value)
