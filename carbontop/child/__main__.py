"""``python -m carbontop.child``: runs :func:`carbontop.child.main.main` and exits at once."""

from carbontop.child.main import exit_now, main

if __name__ == "__main__":
    exit_now(main())
