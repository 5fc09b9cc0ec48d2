"""Reading a sweep back: trials table, Pareto maths, re-evaluation, summary, best, report."""
