"""Leads: their latent quality and value, and intent that decays until the first touch."""

from __future__ import annotations

import math

from gtmsim.spec import ModelSpec


class Lead:
    """One buyer moving through the org. `quality` is the chance to buy if handled well."""

    __slots__ = ("id", "channel", "created", "intent_from", "quality", "value", "touched",
                 "live", "touch_delay", "experience", "info_lost", "error_from", "rework_stage",
                 "stage", "edge", "entered", "slot", "attempt", "max_attempts", "last_compliant",
                 "warm_pending", "u_live", "u_win", "u_churn", "same_instant")

    def __init__(self, lead_id: int, channel: int, t: float, quality: float, value: float):
        self.id = lead_id
        self.channel = channel
        self.created = t
        self.intent_from = t
        self.quality = quality
        self.value = value
        self.touched = False
        self.live = True
        self.touch_delay = math.nan
        self.experience = 1.0
        self.info_lost = False
        self.error_from = -1
        self.rework_stage = -1
        self.stage = -1
        self.edge = -1
        self.entered = -1.0  # before any stage
        self.same_instant = 0  # stages entered one after another at one instant
        self.slot = -1
        self.attempt = 0
        self.max_attempts = 0
        self.last_compliant = True
        self.warm_pending = False
        # the buyer's own uniforms, drawn at birth from the arrivals stream: the same lead
        # makes the same choices in every design run on the same seed
        self.u_live = self.u_win = self.u_churn = 0.0


def intent(spec: ModelSpec, channel: int, delay: float) -> float:
    """Chance the buyer is still interested after `delay` calendar hours without a touch."""
    floor = spec.channel_intent_floor[channel]
    return floor + (1.0 - floor) * math.exp(-delay / spec.channel_intent_tau[channel])


def touch(spec: ModelSpec, lead: Lead, t: float) -> None:
    """The first meaningful touch: the lead turns out live or gone cold, by its own draw."""
    lead.touched = True
    lead.touch_delay = t - lead.intent_from
    lead.live = lead.u_live < intent(spec, lead.channel, lead.touch_delay)
