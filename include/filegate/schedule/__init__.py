"""Expected deliveries: the slots a feed's `expect:` block names, which arrivals satisfy them, and their states
(expected → arrived | late | missed). `slots` is pure computation; `watch` records it in the status store and
alerts."""
