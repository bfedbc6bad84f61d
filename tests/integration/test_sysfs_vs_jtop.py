"""One emulated tree, two readers: the real jtop service and carbontop's sysfs source read the
same /fake_sys and must agree on rails, roles and figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbontop.sources.jtop import JtopSource
from carbontop.sources.sysfs import SysfsSource
from tests.jtop_harness import FAKE_SYS, JtopService, skip_reason

pytestmark = pytest.mark.jtop_service


@pytest.mark.parametrize("tree", ["agx-orin", "thor"])  # two chips + NC; INA3221 + INA238
def test_sysfs_and_jtop_agree_on_one_tree(tree: str) -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with JtopService("nano-2gb", sysfs_tree=tree) as service:
        jtop = JtopSource(0.25, client_factory=service.client_factory)
        sysfs = SysfsSource(0.25, root=Path(FAKE_SYS))
        try:
            j, s = jtop.open(), sysfs.open()
            for field in ("gpu_rail", "gpu_scope", "board_rail", "board_basis", "cpu_rail"):
                assert getattr(s, field) == getattr(j, field), field
            js = jtop._sample(jtop._client)
            ss = sysfs.read_sample()
            assert js is not None and ss is not None
            # jtop truncates each rail to whole milliwatts (int(mV x mA / 1000)): within 1 mW.
            assert ss.gpu_w == pytest.approx(js.gpu_w, abs=0.001)
            assert ss.board_w == pytest.approx(js.board_w, abs=0.005)
            assert [n for n, _ in ss.rails_w] == [n for n, _ in js.rails_w]
        finally:
            jtop.close()
            sysfs.close()
