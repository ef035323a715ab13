"""Trace loaders: every format from small fixtures, bad rows counted and reported (never
kept), unsorted files sorted, chunked loading equal to one-shot, save/load round trips."""

from __future__ import annotations

import gzip
import json
import sys
from datetime import datetime

import numpy as np
import pytest

from hetplan.errors import InputError
from hetplan.scenario import WorkloadRef
from hetplan.workload import (SyntheticSpec, detect_format, generate, load_trace,
                              load_workload, make_trace, save_trace)

AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951693,396,109
2023-11-16 18:15:51.2224670,879,55
2023-11-16 18:15:52,91,16
"""
AZURE_BAD = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
not-a-time,396,109
2023-11-16 18:15:51.2224670,,55
2023-11-16 18:15:51.3910170,91,-16
2023-11-16 18:15:52.5732450,abc,16
2023-11-16 18:15:53.0000000,91,0
2023-11-16 18:15:54.0000000,120,12
"""
MOONCAKE = "\n".join(json.dumps(r) for r in [
    {"timestamp": 0, "input_length": 1300, "output_length": 10, "hash_ids": [1, 2, 3]},
    {"timestamp": 1500, "input_length": 1200, "output_length": 5, "hash_ids": [1, 2, 7]},
    {"timestamp": 4000, "input_length": 1700, "output_length": 7, "hash_ids": [1, 2, 7, 8]},
]) + "\n"
BURST = """Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
5,ChatGPT,472,18,490,Conversation log
9,GPT-4,1070,0,1070,Conversation log
12.5,ChatGPT,220,134,354,API log
13,ChatGPT,31,0,31,API log
"""


def _epoch_ns(s: str) -> int:
    """Nanoseconds of 'YYYY-MM-DD HH:MM:SS[.fffffff]' computed by hand (no pandas)."""
    base, _, frac = s.partition(".")
    whole = datetime.strptime(base, "%Y-%m-%d %H:%M:%S")
    return int(whole.timestamp()) * 10**9 + int((frac + "000000000")[:9])


def test_azure_seven_digit_timestamps(write):
    p = write("AzureLLMInferenceTrace_conv.csv", AZURE)
    assert detect_format(p) == "azure"
    t = load_trace(p)
    stamps = [line.split(",")[0] for line in AZURE.splitlines()[1:]]
    expect = [(_epoch_ns(s) - _epoch_ns(stamps[0])) / 1e9 for s in stamps]
    assert t.arrival_s == pytest.approx(expect, abs=1e-9)
    assert t.arrival_s[1] == pytest.approx(4.3145793, abs=1e-9)     # the 7th digit counts
    assert list(t.input_tokens) == [374, 396, 879, 91] and t.report.format == "azure"
    assert t.report.rows_kept == 4 and t.report.bad_rows == 0


def test_azure_2024_mixed_timestamps(write):
    """The 2024 trace mixes '...00.001163+00:00' and '...00+00:00' (no fraction)."""
    p = write("AzureLLMInferenceTrace_code_1week.csv",
              "TIMESTAMP,ContextTokens,GeneratedTokens\n"
              "2024-05-12 00:00:00.001163+00:00,10,2\n2024-05-12 00:00:00+00:00,20,3\n"
              "2024-05-12 01:00:00+01:00,30,4\n")
    t = load_trace(p, warn=False)
    assert t.arrival_s == pytest.approx([0.0, 0.0, 0.001163])   # 01:00+01:00 is 00:00 UTC
    assert list(t.input_tokens) == [20, 30, 10] and t.report.out_of_order == 2


def test_bad_rows_are_counted_reported_and_skipped(write, capsys):
    p = write("az.csv", AZURE_BAD)
    t = load_trace(p)
    r = t.report
    assert r.rows_read == 7 and r.rows_kept == 2 and r.bad_rows == 5
    assert [n for n, _ in r.first_bad] == [3, 4, 5, 6, 7]
    assert r.bad_by_reason == {"unparsable timestamp in TIMESTAMP": 1,
                               "missing ContextTokens": 1, "negative GeneratedTokens": 1,
                               "non-numeric ContextTokens": 1, "zero GeneratedTokens": 1}
    assert list(t.input_tokens) == [374, 120]
    err = capsys.readouterr().err
    assert "skipped 5 bad rows" in err and "az.csv" in err and "lines 3 (unparsable" in err


def test_on_bad_error_names_file_and_first_line(write):
    p = write("az.csv", AZURE_BAD)
    with pytest.raises(InputError, match=r"az\.csv: line 3: unparsable timestamp"):
        load_trace(p, on_bad="error")
    with pytest.raises(InputError, match="line 3"):       # same line however it is chunked
        load_trace(p, on_bad="error", chunk_rows=1)


def test_unsorted_rows_are_sorted_stably_and_reported(write, capsys):
    p = write("u.csv", "arrival_s,input_tokens,output_tokens\n"
                       "5,1,1\n2,2,2\n5,3,3\n1,4,4\n7,5,5\n")
    t = load_trace(p, chunk_rows=2)
    assert list(t.arrival_s) == [0, 1, 4, 4, 6]
    assert list(t.input_tokens) == [4, 2, 1, 3, 5]       # ties keep file order
    assert t.report.out_of_order == 2
    assert "2 rows arrived before an earlier row" in capsys.readouterr().err


def test_mooncake_prefix_from_block_hashes(write):
    """Request 1 shares nothing; request 2 finds blocks 1, 2 (1024 tokens); request 3
    finds 1, 2, 7 (1536 tokens) but not 8."""
    p = write("mooncake_trace.jsonl", MOONCAKE)
    assert detect_format(p) == "mooncake"
    t = load_trace(p)
    assert list(t.arrival_s) == [0.0, 1.5, 4.0]
    assert list(t.prefix_tokens) == [0, 2 * 512, 3 * 512]
    assert list(t.output_tokens) == [10, 5, 7]


def test_mooncake_prefix_is_capped_and_skips_bad_rows(write):
    rows = [{"timestamp": 0, "input_length": 1000, "output_length": 1, "hash_ids": [4, 5]},
            {"timestamp": 1, "input_length": 9, "output_length": -1, "hash_ids": [6]},
            {"timestamp": 2, "input_length": 700, "output_length": 2, "hash_ids": [4, 5]},
            {"timestamp": 3, "input_length": 600, "output_length": 2, "hash_ids": [6, 4]}]
    text = "\n".join(json.dumps(r) for r in rows) + "\n\n{broken\n"
    t = load_trace(write("m.jsonl", text), format="mooncake")
    assert list(t.prefix_tokens) == [0, 700, 0]     # capped at the input; bad row 2 unseen
    assert t.report.bad_rows == 2 and [n for n, _ in t.report.first_bad] == [2, 6]


def test_burstgpt_failed_requests(write, capsys):
    p = write("BurstGPT_1.csv", BURST)
    assert detect_format(p) == "burstgpt"
    t = load_trace(p)
    assert list(t.arrival_s) == [0.0, 7.5] and list(t.output_tokens) == [18, 134]
    assert t.report.failed_requests == 2 and t.report.first_failed == [3, 5]
    assert t.report.bad_rows == 0
    assert "2 failed requests (0 response tokens)" in capsys.readouterr().err
    with pytest.raises(InputError, match="line 3: failed request"):
        load_trace(p, on_bad="error")


@pytest.mark.parametrize("unit,values,expect", [
    ("s", ["10", "10.5", "12"], [0, 0.5, 2]),
    ("ms", ["1000", "1500", "4000"], [0, 0.5, 3]),
    ("us", ["0", "250000", "1000000"], [0, 0.25, 1]),
    ("datetime", ["2024-05-10T00:00:00Z", "2024-05-10T00:00:00.25Z",
                  "2024-05-10T00:01:00Z"], [0, 0.25, 60]),
])
def test_generic_column_map_and_time_units(write, unit, values, expect):
    rows = "".join(f"{v},{10 + i},{20 + i},{s}\n"
                   for i, (v, s) in enumerate(zip(values, ["a", "b", "a"])))
    p = write("g.csv", "when,prompt,completion,conv\n" + rows)
    cmap = {"timestamp": "when", "input_tokens": "prompt", "output_tokens": "completion",
            "session_id": "conv"}
    t = load_trace(p, column_map=cmap, time_unit=unit)
    assert t.arrival_s == pytest.approx(expect)
    assert list(t.input_tokens) == [10, 11, 12] and list(t.session_id) == [0, 1, 0]


def test_arrival_s_means_seconds_and_text_sessions_are_numbered(write):
    p = write("s.csv", "t,i,o,sess\n1000,1,1,x\n1001,1,1,\n1003,1,1,y\n")
    t = load_trace(p, column_map={"arrival_s": "t", "input_tokens": "i",
                                  "output_tokens": "o", "session_id": "sess"})
    assert list(t.arrival_s) == [0, 1, 3] and t.report.time_unit == "s"
    assert list(t.session_id) == [0, -1, 1] and not t.report.notes


def test_generic_jsonl_infers_time_unit_and_keeps_integer_sessions(write):
    text = "".join(json.dumps({"timestamp": f"2024-01-01 00:00:0{i}", "input_tokens": 5,
                               "output_tokens": 3, "session_id": 40 + i % 2,
                               "prefix_tokens": i}) + "\n" for i in range(4))
    t = load_trace(write("x.jsonl", text))
    assert t.report.format == "generic" and t.report.time_unit == "datetime"
    assert list(t.arrival_s) == [0, 1, 2, 3] and list(t.session_id) == [40, 41, 40, 41]
    assert list(t.prefix_tokens) == [0, 1, 2, 3]
    assert any("inferred" in n for n in t.report.notes)


@pytest.mark.parametrize("name,text", [("az.csv", AZURE_BAD), ("m.jsonl", MOONCAKE),
                                       ("BurstGPT_2.csv", BURST)])
def test_chunked_loading_equals_one_shot(write, name, text):
    p = write(name, text)
    one, tiny = load_trace(p, warn=False), load_trace(p, chunk_rows=2, warn=False)
    for k in ("arrival_s", "input_tokens", "output_tokens", "prefix_tokens"):
        a, b = getattr(one, k), getattr(tiny, k)
        assert (a is None and b is None) or np.array_equal(a, b), k
    assert one.report.to_dict() == tiny.report.to_dict()


def test_format_detection_and_explicit_format(write):
    canon = write("c.csv", "arrival_s,input_tokens,output_tokens\n0,1,1\n")
    assert detect_format(canon) == "generic"
    with pytest.raises(InputError, match=r"missing columns: TIMESTAMP.*azure format"):
        load_trace(canon, format="azure2023")
    with pytest.raises(InputError, match="unknown trace format"):
        load_trace(write("w.csv", "a,b\n1,2\n"))
    with pytest.raises(InputError, match="unknown trace format 'foo'"):
        load_trace(canon, format="foo")
    with pytest.raises(InputError, match="unknown key 'bogus'"):
        load_trace(canon, column_map={"bogus": "a"})
    noext = write("trace", MOONCAKE)                      # no extension: sniffed as JSONL
    assert detect_format(noext) == "mooncake"


def test_gzip_and_max_rows(tmp_path):
    p = tmp_path / "AzureLLMInferenceTrace_code.csv.gz"
    p.write_bytes(gzip.compress(AZURE.encode()))
    t = load_trace(p, max_rows=3)
    assert t.num_requests == 3 and t.report.rows_read == 3
    assert any("max_rows" in n for n in t.report.notes)


def test_parquet_without_pyarrow_says_how_to_install(write, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InputError, match=r"pip install hetplan\[parquet\]"):
        load_trace(write("t.parquet", "not really parquet"))


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"t": [3.0, 1.0, 2.0], "i": [5, 6, 7], "o": [1, 0, 3]}), p)
    t = load_trace(p, column_map={"arrival_s": "t", "input_tokens": "i", "output_tokens": "o"},
                   chunk_rows=1, warn=False)
    assert list(t.input_tokens) == [7, 5] and t.report.first_bad[0][0] == 2
    assert t.report.line_word == "row"
    stamps = pa.array([datetime(2024, 5, 10, 0, 0, 1), datetime(2024, 5, 10, 0, 0, 0, 500000)],
                      pa.timestamp("us"))
    pq.write_table(pa.table({"timestamp": stamps, "input_tokens": [1, 2],
                             "output_tokens": [3, 4]}), p)
    t = load_trace(p)
    assert t.report.time_unit == "datetime" and list(t.arrival_s) == [0.0, 0.5]


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_save_trace_round_trips(tmp_path, ext):
    spec = SyntheticSpec(arrival={"rate_rps": 2.0}, input_tokens={"dist": "fixed", "value": 50},
                         output_tokens={"dist": "uniform", "min": 1, "max": 9}, duration_s=60,
                         pattern="agentic", agentic={
                             "turns": {"dist": "uniform", "min": 1, "max": 4},
                             "new_tokens": {"dist": "fixed", "value": 7},
                             "think_time_s": {"dist": "exponential", "mean": 0.3},
                             "system_prompt_tokens": 100})
    t = generate(spec)
    p = save_trace(t, tmp_path / f"out.{ext}")
    back = load_trace(p)
    for k in ("arrival_s", "input_tokens", "output_tokens", "session_id", "prefix_tokens"):
        assert np.array_equal(getattr(t, k), getattr(back, k)), k
    plain = make_trace([0.1, 0.3], [1, 2], [3, 4])
    assert np.array_equal(load_trace(save_trace(plain, tmp_path / f"p.{ext}")).arrival_s,
                          plain.arrival_s)
    with pytest.raises(InputError, match="must end in"):
        save_trace(plain, tmp_path / "x.txt")


def test_scenario_workload_names_any_format(write, tmp_path):
    write("m.jsonl", MOONCAKE)
    t = load_workload(WorkloadRef(trace="m.jsonl", format="mooncake"), tmp_path)
    assert list(t.prefix_tokens) == [0, 1024, 1536]
    write("g.csv", "ms,in,out\n2000,5,6\n1000,7,8\n")
    t = load_workload(WorkloadRef(trace="g.csv", column_map={
        "timestamp": "ms", "input_tokens": "in", "output_tokens": "out"}, time_unit="ms"),
        tmp_path)
    assert list(t.arrival_s) == [0, 1.0] and list(t.input_tokens) == [7, 5]


def test_progress_line_on_request(write, monkeypatch, capsys):
    monkeypatch.setenv("HETPLAN_PROGRESS", "1")
    load_trace(write("az.csv", AZURE), chunk_rows=2)
    err = capsys.readouterr().err
    assert "reading az.csv: 4 rows" in err and "MB" in err
