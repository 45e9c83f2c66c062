"""BoT-IoT's categories in another spelling (DOS, dos, NORMAL) are the published classes, not new ones."""

from __future__ import annotations


def test_a_category_spelt_another_way_is_the_same_class(tmp_path):
    from ids_lightning.datasets import get_spec

    header = "flgs,proto,pkts,bytes,dur,mean,stddev,sum,min,max,rate,category"
    spellings = ["DoS", "DOS", "dos ", "Normal", "NORMAL", "Reconnaissance"] * 10
    rows = [f"e,tcp,{i},680,1.5,0.1,0.01,0.2,0.05,0.3,0.6,{name}" for i, name in enumerate(spellings)]
    path = tmp_path / "sample.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    table = get_spec("bot_iot").read_file(path)
    assert sorted(set(table.labels.tolist())) == ["DoS", "Normal", "Reconnaissance"]
