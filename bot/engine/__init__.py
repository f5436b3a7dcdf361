"""The pure core: rules, data and an as-of date in; fires and values out. No I/O, no clock.

The live check, `backtest` and `replay` all call `evaluate`, so there is one
answer for a given day whichever way it is asked.
"""
