"""`python -m invoker_cli`: the same as the `invoker` console script."""

from invoker_cli.main import app

app(prog_name="invoker")
