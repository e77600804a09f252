"""Leave-one-source-out validation (models/validation.py) and its use by the serving and
GEMM fits: the summary, the acceptance rule, and the serving fit's held-out protocol."""
from __future__ import annotations

import numpy as np
import pytest

from systolab.errors import UserError
from systolab.models.gpu import fit as gemm_fit
from systolab.models.gpu.fit_file import fit_file
from systolab.models.serving import fit as sf
from systolab.models.serving.finite_replay import finite_runs
from systolab.models.serving.model import combine, serve
from systolab.models.specs import load_yaml
from systolab.models.validation import check_accepted, summarise


def _rows(errors: dict[str, list[float]]) -> list[dict]:
    return [{"id": f"{s}{i}", "source": s, "error_pct": e} for s, errs in errors.items() for i, e in enumerate(errs)]


def test_summary_of_held_out_rows():
    s = summarise(_rows({"a": [-10.0, 2.0, 4.0], "b": [30.0, -1.0]}))
    assert s.n == 5 and s.median_abs_error_pct == 4.0 and s.bias_pct == 2.0
    assert s.p90_abs_error_pct == pytest.approx(np.percentile([10, 2, 4, 30, 1], 90))
    by = {x.source: x for x in s.sources}
    assert by["a"].median_abs_error_pct == 4.0 and by["a"].bias_pct == 2.0 and by["b"].n == 2
    assert s.worst_source.source == "b" and s.to_dict()["worst_source"] == "b"
    frame = s.to_frame()
    assert list(frame["source"]) == ["a", "b", "all"]
    with pytest.raises(UserError, match="^rows"):
        summarise([])


def test_acceptance_rule_rejects_a_worse_held_out_error_and_only_on_the_same_rows():
    stored = summarise(_rows({"a": [1.0, -2.0, 3.0], "b": [4.0, -5.0]})).to_dict()
    better = summarise(_rows({"a": [1.0, -1.0, 2.0], "b": [3.0, -4.0]})).to_dict()
    check_accepted(better, stored)                      # better everywhere: accepted
    check_accepted(better, None)                        # nothing stored: no bar
    worse = summarise(_rows({"a": [1.0, -2.0, 3.0], "b": [9.0, -9.0]})).to_dict()
    with pytest.raises(UserError, match="^fit: rejected.*worse") as exc:
        check_accepted(worse, stored)
    assert exc.value.parameter == "fit"
    other_rows = summarise(_rows({"a": [1.0, -2.0, 3.0], "b": [9.0, -9.0], "c": [50.0]})).to_dict()
    check_accepted(other_rows, stored)                  # new data: a new reference, not compared


def test_a_fit_better_in_sample_but_worse_held_out_is_rejected():
    """Synthetic sources: a straight line with noise, each source covering its own range of x
    (as each benchmark covers its own GPUs and models). A degree-6 polynomial fits the pooled
    rows better than a line, and predicts a source it never saw worse: the rule refuses it."""
    rng = np.random.default_rng(0)
    x = {s: k + np.linspace(0, 1, 8) for k, s in enumerate("abcde")}
    y = {s: 1 + 2 * x[s] + rng.normal(0, 0.3, 8) for s in "abcde"}

    def held_out(degree: int) -> tuple[float, dict]:
        pooled = np.polyfit(np.concatenate(list(x.values())), np.concatenate(list(y.values())), degree)
        in_sample = float(np.median([abs(np.polyval(pooled, x[s][i]) / y[s][i] - 1) for s in x for i in range(8)]))
        rows = []
        for s in x:
            xs = np.concatenate([x[o] for o in x if o != s])
            ys = np.concatenate([y[o] for o in x if o != s])
            c = np.polyfit(xs, ys, degree)
            rows += [{"id": f"{s}{i}", "source": s, "error_pct": 100 * (np.polyval(c, x[s][i]) / y[s][i] - 1)}
                     for i in range(8)]
        return in_sample, summarise(rows).to_dict()

    line_in, line = held_out(1)
    poly_in, poly = held_out(6)
    assert poly_in < line_in                            # the richer fit is better in-sample ...
    check_accepted(line, None)
    with pytest.raises(UserError, match="^fit: rejected"):
        check_accepted(poly, line)                      # ... and is rejected on held-out error


def test_store_loso_refuses_a_worse_summary_and_writes_nothing(tmp_path):
    path = tmp_path / "fit.yaml"
    path.write_text(fit_file().read_text())
    good = summarise(_rows({"a": [1.0, -2.0], "b": [3.0]}))
    sf.store_loso(good, path=str(path), check=False)
    before = path.read_text()
    with pytest.raises(UserError, match="^fit: rejected"):
        sf.store_loso(summarise(_rows({"a": [10.0, -20.0], "b": [30.0]})), path=str(path))
    assert path.read_text() == before
    assert sf.stored_loso(path)["median_abs_error_pct"] == pytest.approx(2.0)


def test_vectorised_prediction_equals_each_replay_alone():
    theta = sf.stored_theta()
    pred = sf.predict(theta)
    ms, rs, names = sf.measurements(), sf.replays(), sf.runtimes()
    for i in (0, len(ms) // 2, len(ms) - 1):
        params = np.array([*theta[:3], theta[3 + names.index(ms[i].runtime)]])
        sec = combine(rs[i].terms, params)
        one = rs[i].ttft @ sec if ms[i].metric == "ttft_s" else rs[i].tokens_per_device / (rs[i].total @ sec)
        assert pred[i] == pytest.approx(one, rel=1e-12)
    assert sf.predict(theta, [2, 0]) == pytest.approx(pred[[2, 0]])


def test_an_unseen_runtime_borrows_its_like_or_the_typical_cost():
    names = sf.runtimes()
    theta = np.array([0.8, 0.9, 0.9, *[1e-5 * (k + 1) for k in range(len(names))]])
    like = sf.unseen_like()
    assert like["gpt-fast"] == "vllm" and like["trtllm-0.9"] == "trtllm-0.8"
    train = [i for i, m in enumerate(sf.measurements()) if m.runtime not in ("gpt-fast", "lmdeploy-0.1")]
    out = sf._fill_unseen(theta, train)
    k = {r: 3 + names.index(r) for r in names}
    assert out[k["gpt-fast"]] == theta[k["vllm"]]               # its like was seen
    seen = [theta[k[r]] for r in names if r not in ("gpt-fast", "lmdeploy-0.1")]
    assert out[k["lmdeploy-0.1"]] == pytest.approx(np.exp(np.mean(np.log(seen))))   # no like: typical
    assert out[k["vllm"]] == theta[k["vllm"]]


def test_every_source_and_runtime_of_the_measurements_is_declared():
    doc = load_yaml(sf.SERVING_FILE)["measurement_sources"]
    assert set(sf.sources()) <= set(doc) and len(sf.sources()) >= 6 and len(sf.measurements()) >= 100
    runtimes = load_yaml(sf.RUNTIMES_FILE)["runtimes"]
    assert set(sf.runtimes()) <= {e.get("fit_name", n) for n, e in runtimes.items()}


def test_gemm_shapes_left_out_of_the_fit_by_table():
    s = gemm_fit.heldout_summary()
    assert {x.source for x in s.sources} == {"deepgemm-dense", "deepgemm-grouped-contiguous", "deepgemm-grouped-masked",
                                             "tilelang-dense"}
    assert s.n == sum(1 for m in gemm_fit.gemm_measurements() if not m.fit)
    assert s.median_abs_error_pct <= 10


@pytest.mark.slow
def test_the_recorded_leave_one_source_out_error_is_the_stored_fits():
    """benchmarks/validation.py --write records these figures."""
    stored = load_yaml(fit_file())["leave_one_source_out"]
    s = sf.leave_one_source_out()
    assert s.n == stored["n"] == len(sf.measurements())
    assert s.median_abs_error_pct == pytest.approx(stored["median_abs_error_pct"], abs=0.2)
    assert s.median_abs_error_pct <= 8
    fitted = [x for x in s.sources if x.source not in sf.check_only_sources()]
    assert fitted and max(x.median_abs_error_pct for x in fitted) <= 20
    assert {x.source: round(x.median_abs_error_pct, 3) for x in s.sources} == \
        {k: v["median_abs_error_pct"] for k, v in stored["sources"].items()}


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 31's 'no source above 20 %' is not met: SGLang's check-only "
                                       "source is held out at 32.4 % (benchmarks/README.md, Targets)")
def test_no_source_of_the_serving_measurements_is_held_out_above_20_percent():
    stored = load_yaml(fit_file())["leave_one_source_out"]
    assert max(v["median_abs_error_pct"] for v in stored["sources"].values()) <= 20


def test_every_runtime_of_the_measurements_reproduces_its_rows_through_serve():
    """serve(..., runtime=NAME) is the fit's replay of a calibration row (one dense row per
    runtime whose kernel reads each KV head once, as serve assumes)."""
    pred, done, ms = sf.predict(sf.stored_theta()), set(), sf.measurements()
    # a tensor-parallel row where the runtime has none on one device (sglang: TP 4 only)
    for i in sorted(range(len(ms)), key=lambda j: ms[j].tp != 1):
        m = ms[i]
        if (m.runtime in done or not m.kv_shared or m.metric == "ttft_s" or m.model.startswith("mixtral")
                or m.id in finite_runs()):      # a finite run: tests/test_finite_run.py replays it
            continue
        done.add(m.runtime)
        load = {"concurrency": m.batch} if sf.in_flight(m) else {"batch": m.batch}   # in-flight rows replay as such
        r = serve(m.gpu_id, m.model, isl=m.isl, osl=m.osl, tp=m.tp, dtype=m.dtype, kv_dtype=m.kv_dtype,
                  runtime=m.runtime, **load)
        assert r.output_tokens_per_s == pytest.approx(pred[i], rel=1e-9), m.id
    # 0.5 read the KV cache per query head; SGLang's rows are all finite runs (serving.yaml: finite_runs)
    assert all(m.id in finite_runs() for m in ms if m.runtime == "sglang")
    assert done == set(sf.runtimes()) - {"trtllm-0.5", "sglang"}
