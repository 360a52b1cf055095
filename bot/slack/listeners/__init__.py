"""Slack listeners, one module per surface: parse, call one service, render, answer."""
