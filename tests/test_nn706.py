"""NN706 beyond its examples: which clocks pair up, what counts as waiting for the GPU, when a file runs on CUDA."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source


def findings(source: str) -> list:
    result = lint_source(textwrap.dedent(source).encode(), "bench.py", [rule_by_code("NN706")], max_file_size=10**7)
    assert not result.diagnostics
    return result.findings


def timed(body: str, setup: str = "") -> str:
    """A forward timed on the GPU, with `body` between the forward and the second reading."""
    return f"""
    import time
    import torch

    def bench(model, x, y, best):
        model.cuda()
        x = x.cuda()
        {setup}
        t0 = time.perf_counter()
        out = model(x)
        {body}
        return time.perf_counter() - t0
    """


@pytest.mark.parametrize(
    ("imports", "clock"),
    [
        ("import time as t", "t.monotonic"),
        ("from time import time_ns", "time_ns"),
        ("from timeit import default_timer as timer", "timer"),
        ("import time", "time.perf_counter_ns"),
    ],
)
def test_clock_spellings(imports, clock):
    source = f"""
    {imports}
    import torch

    model = model.cuda()
    start = {clock}()
    out = model(x)
    elapsed = {clock}() - start
    """
    assert len(findings(source)) == 1


def test_message_names_both_readings_and_the_work():
    [finding] = findings(timed("pass"))
    assert finding.line == 12
    assert finding.message.startswith(
        "`time.perf_counter()` at line 12 ends a timing started by `time.perf_counter()` at line 9 around CUDA work "
        "(`model(x)` at line 10) with nothing synchronising"
    )
    assert "torch.cuda.synchronize()" in finding.message and "torch.cuda.Event" in finding.message


@pytest.mark.parametrize(
    "body",
    [
        "torch.cuda.synchronize()",
        "torch.cuda.current_stream().synchronize()",
        "n = out.argmax(1).item()",
        "preds = out.argmax(1).tolist()",
        "print(out)",
        "print(f'{out.mean():.3f}')",
        "logger.info('mean %s', out.mean())",
        "if out.max() > best: best = out.max()",
        "kept = out[out > 0.5]",
        "acc = accuracy(out, y)",
        "torch.distributed.barrier()",
        "torch.save(out, 'out.pt')",
        "out = out.to('cpu')",
    ],
)
def test_what_waits_for_the_gpu(body):
    assert findings(timed(body)) == []


@pytest.mark.parametrize(
    "body",
    [
        "loss = criterion(out, y)",
        "pred = out.argmax(1)",
        "print('done')",
        "outputs.append(out)",
        "loss = torch.nn.functional.cross_entropy(out, y); loss.backward(); optimizer.step()",
    ],
)
def test_what_does_not_wait(body):
    assert len(findings(timed(body))) == 1


def test_a_sync_before_the_work_does_not_count():
    source = """
    import time
    import torch

    def bench(model, x):
        model.cuda()
        start = time.time()
        torch.cuda.synchronize()
        out = model(x.cuda(non_blocking=True))
        return time.time() - start
    """
    assert len(findings(source)) == 1


def test_a_file_that_does_not_run_on_cuda_or_import_torch_is_silent():
    on_cpu = timed("pass").replace("model.cuda()", "model.cpu()").replace("x = x.cuda()", "x = x.cpu()")
    assert findings(on_cpu.replace("model.cpu()", "pass")) == []  # no CUDA anywhere in the file
    no_torch = timed("pass").replace("import torch", "import tensorflow as tf")
    assert findings(no_torch) == []


def test_training_loops_over_data_are_left_alone():
    source = """
    import time
    import torch

    def train(model, loader, optimizer, criterion):
        model.cuda()
        it = iter(loader)
        start = time.time()
        for step in range(len(loader)):
            x, y = next(it)
            loss = criterion(model(x.cuda(non_blocking=True)), y.cuda(non_blocking=True))
            loss.backward()
            optimizer.step()
        epoch_time = time.time() - start
        start = time.time()
        while time.time() - start < 10:
            model(x)
    """
    assert findings(source) == []


def test_readings_in_different_functions_do_not_pair():
    source = """
    import time
    import torch

    class Timer:
        def on_batch_start(self):
            self.start = time.time()

        def on_batch_end(self, model, x):
            out = model(x.cuda())
            self.elapsed = time.time() - self.start
    """
    assert findings(source) == []


def test_models_loaded_on_the_cpu_until_moved():
    source = """
    import time
    import torch
    from transformers import AutoModel

    def compare(path, x):
        model = torch.load(path, map_location="cpu")
        start = time.time()
        out = model(x)
        cpu_time = time.time() - start
        encoder = AutoModel.from_pretrained("bert-base-uncased")
        start = time.time()
        out = encoder(x)
        cpu_time = time.time() - start
        encoder.to("cuda")
        start = time.time()
        out = encoder(x)
        gpu_time = time.time() - start
    """
    assert [finding.line for finding in findings(source)] == [18]
