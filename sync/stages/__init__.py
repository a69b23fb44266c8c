"""The stages of a tick (see sync.tick.STAGES), each a function of one TickContext."""
