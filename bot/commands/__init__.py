"""One module per `pqlbot` sub-command; see bot.cli.COMMANDS."""
