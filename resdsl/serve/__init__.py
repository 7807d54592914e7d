"""`resdsl serve`: a live page for a spec: edit it, see its diagram, costs and errors as you type.

    browser --HTTP (token)--> app.py (Starlette on uvicorn, 127.0.0.1) --pipe--> worker.py (a process
    that can be killed: parse, check, render, cost under the CLI's budgets and a time limit)

files.py confines every path to the served folder; static/ holds the page (no network at run time).
"""
