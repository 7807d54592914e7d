"""Tools that read and write .res source (pure Python, no torch).

fmt.py         `resdsl fmt`: text -> AST -> canonical text (the writer's line structure kept)
layout.py      what the tree forgets and fmt keeps: comments, brackets, line breaks, spellings
show.py        `resdsl show`: a lowered Net -> the spec resolved, as AST nodes -> text
highlight.py   the Pygments lexer (the language's word lists, also read by the serve page)
completion.py  shell completion of spec files and `--set` names
cli.py         the `fmt` and `show` commands

The writer of .res text itself, `frontend/unparse.py` (AST -> text), stays beside the parser:
the front end's messages print values with it.
"""
