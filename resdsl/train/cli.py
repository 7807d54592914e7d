"""`resdsl train` and `resdsl eval`; option names follow timm's train.py where one exists."""
from __future__ import annotations

import json
import typing
import os
from pathlib import Path

import click

from resdsl.cli_common import allow_imports_option, network_option, reports_errors, sets_option
from resdsl.train.config import TrainConfig, recipe_from_options

# the choices of the recipe's closed options: TrainConfig's literals
CHOICES = {f: typing.get_args(TrainConfig.model_fields[f].annotation) for f in ("opt", "sched", "precision")}


def _main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


def recipe_options(fn):
    """Every TrainConfig field as an option; None means "not given" (the default, or the resumed run's)."""
    opts = [
        click.option("--data", help="digits (default) | cifar10:PATH | cifar100:PATH | mnist:PATH | npz:PATH[,PATH] | seq:PATH (an npz of N×C×L sequences) | folder:PATH"),
        click.option("--epochs", type=int, help="Epochs to train [30]."),
        click.option("-b", "--batch-size", type=int, help="Batch size per process [128]."),
        click.option("--opt", type=click.Choice(CHOICES["opt"]), help="Optimiser [sgd]."),
        click.option("--lr", type=float, help="Peak learning rate [0.1]."),
        click.option("--momentum", type=float, help="SGD momentum [0.9]."),
        click.option("--nesterov/--no-nesterov", default=None, help="Nesterov momentum for sgd [off]."),
        click.option("--weight-decay", "--wd", "weight_decay", type=float, help="Weight decay [5e-4]."),
        click.option("--wd-exclude-bn-bias/--wd-all", "wd_exclude_bn_bias", default=None,
                     help="No weight decay on BN and biases [exclude]."),
        click.option("--sched", "--schedule", "sched", type=click.Choice(CHOICES["sched"]), help="LR schedule [cosine]."),
        click.option("--warmup-epochs", type=float, help="Linear warm-up epochs [0]; onecycle: rise epochs."),
        click.option("--min-lr", type=float, help="Cosine floor [0]."),
        click.option("--decay-milestones", help="Step schedule epochs, e.g. 91,136 [50%,75% of --epochs]."),
        click.option("--decay-rate", type=float, help="Step schedule factor [0.1]."),
        click.option("--grow", help="Multi-level training (Chang et al. 2018): double the depth after these epochs, "
                                    "e.g. 10,20 [off]."),
        click.option("--grow-param", help="The network parameter --grow doubles [n]."),
        click.option("--smoothing", type=float, help="Label smoothing [0]."),
        click.option("--clip-grad", type=float, help="Clip gradients at this norm (or value) [off]."),
        click.option("--clip-mode", type=click.Choice(["norm", "value"]), help="Gradient clipping mode [norm]."),
        click.option("--precision", type=click.Choice(CHOICES["precision"]), help="Autocast precision [fp32]."),
        click.option("--amp", is_flag=True, default=None, help="Mixed precision: same as --precision fp16 (bf16 on CPU)."),
        click.option("--amp-dtype", type=click.Choice(["float16", "bfloat16"]), help="Dtype for --amp."),
        click.option("--channels-last", is_flag=True, default=None, help="Channels-last memory format."),
        click.option("--compile", "--torchcompile", "compile", is_flag=True, default=None, help="torch.compile the model."),
        click.option("--crop-pad", type=int, help="Random-crop padding [H//8: 4 for 32x32, 1 for 8x8]."),
        click.option("--hflip", type=float, help="Horizontal flip probability [0.5 for colour images, 0 for grayscale: digits, MNIST]."),
        click.option("--seed", type=int, help="Random seed [42]."),
        click.option("--deterministic", is_flag=True, default=None, help="Deterministic kernels (bitwise-repeatable runs)."),
        click.option("--device", help="auto | cpu | cuda | cuda:N [auto]."),
        click.option("-j", "--workers", type=int, help="DataLoader workers, for data not kept on the device [2]."),
        click.option("--sync-bn", is_flag=True, default=None, help="Synchronised batch norm under torchrun."),
        click.option("--log-interval", type=int, help="Steps between log flushes and NaN checks [10]."),
        click.option("--eval-batch-size", "--validation-batch-size", "eval_batch_size", type=int, help="Evaluation batch size [1024]."),
        click.option("--on-device-max-mb", type=int, help="Keep data on the device up to this size [2048]."),
        click.option("--output", help="Folder for run directories [runs]."),
        click.option("--experiment", help="Run directory name [a timestamp]."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


@click.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@network_option()
@sets_option()
@recipe_options
@allow_imports_option()
@click.option("--resume", type=click.Path(), help="Continue the run in this directory (or from its last.pt).")
@click.option("--init", type=click.Path(dir_okay=False), help="Start from these weights (state dict, .safetensors, or a run's .pt).")
@click.option("--quiet", "-q", is_flag=True, help="Only errors.")
@reports_errors
def train(spec, network, sets, allow_imports, resume, init, quiet, **options):
    """Train the network of SPEC on --data; write a run directory (see --output)."""
    from resdsl.cli_common import split_sets
    from resdsl.train.progress import Reporter
    from resdsl.train.session import run

    reporter = Reporter(quiet=quiet)
    summary = run(Path(spec) if spec else None, recipe_from_options(options), network=network,
                  args=split_sets(sets) if sets else None, resume=resume, init=init,
                  allow_imports=allow_imports, reporter=reporter)
    if not quiet and _main_rank():
        click.echo(f"done: test accuracy {summary['final_test_acc']:.2%} (best {summary['best_test_acc']:.2%}"
                   f" at epoch {summary['best_epoch']}), {summary['train_s']:.1f}s training; {summary['run_dir']}")


@click.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@network_option("the checkpoint's")
@sets_option()
@click.option("--checkpoint", required=True, type=click.Path(), help="A best.pt/last.pt, or a run directory.")
@click.option("--data", default=None, help="Dataset to score (default: the checkpoint's); the test split is used.")
@click.option("-b", "--batch-size", type=click.IntRange(1, 1 << 20), default=1024, show_default=True, help="Batch size.")
@allow_imports_option()
@click.option("--precision", type=click.Choice(CHOICES["precision"]), default=None,
              help="Autocast precision [the run's, as its own test scores were measured].")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@reports_errors
def evaluate(spec, network, sets, checkpoint, data, batch_size, allow_imports, precision, device, as_json):
    """Score a checkpoint of SPEC on the test split of --data: loss and top-1 accuracy."""
    from resdsl.train.evaluate import evaluate_checkpoint

    from resdsl.cli_common import split_sets

    path = Path(checkpoint).expanduser()
    path = path / "best.pt" if path.is_dir() and (path / "best.pt").is_file() else path
    result = evaluate_checkpoint(Path(spec) if spec else None, network, split_sets(sets) if sets else None, path,
                                 data, batch_size, precision, device, allow_imports)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{result['spec_name']} on {result['data']} ({result['images']:,} test images): "
                   f"loss {result['test_loss']:.4f}, accuracy {result['test_acc']:.2%}")
