"""Dashboard panels; each renders one value object (a Snapshot) into fixed-width text."""

from carbontop.tui.widgets.chart import PowerChart
from carbontop.tui.widgets.energy import EnergyPanel
from carbontop.tui.widgets.log import MessagesPanel
from carbontop.tui.widgets.menu import WorkloadMenu
from carbontop.tui.widgets.power import PowerPanel
from carbontop.tui.widgets.status import StatusBar
from carbontop.tui.widgets.workload import WorkloadPanel

__all__ = ["EnergyPanel", "MessagesPanel", "PowerChart", "PowerPanel", "StatusBar", "WorkloadMenu",
           "WorkloadPanel"]
