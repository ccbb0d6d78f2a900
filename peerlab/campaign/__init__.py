"""Campaigns: a base scenario run over a grid of parameter values x seeds, on Dask.

A campaign file names a base scenario, a grid over its key paths, seeds and the metrics to keep
(``scenarios/README.md``). :func:`run_campaign` runs what its folder does not hold yet, on an
embedded LocalCluster, a cluster's scheduler, or in this process; :func:`campaign_table` reads
the folder back as a table and :func:`draw_campaign` plots a metric with confidence intervals.
"""

from peerlab.campaign.execute import CampaignReport, execute_run, local_cluster, run_campaign
from peerlab.campaign.figure import draw_campaign
from peerlab.campaign.metrics import metric_names
from peerlab.campaign.spec import Campaign, Run, load_campaign, parse_seeds
from peerlab.campaign.table import Table, campaign_table, read_table, write_table

__all__ = [
    "Campaign",
    "CampaignReport",
    "Run",
    "Table",
    "campaign_table",
    "draw_campaign",
    "execute_run",
    "load_campaign",
    "local_cluster",
    "metric_names",
    "parse_seeds",
    "read_table",
    "run_campaign",
    "write_table",
]
