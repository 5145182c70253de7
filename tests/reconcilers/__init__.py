"""Tests of the AgenticSession operator (reconcilers/)."""
