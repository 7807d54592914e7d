try:
    from resdsl.cli import main
except KeyboardInterrupt:          # Ctrl-C while Python imports the CLI: no traceback either
    import sys

    sys.stderr.write("interrupted\n")
    sys.exit(130)

main()
