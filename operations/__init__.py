"""Operations on a running stack, local or deployed: the ``blog`` command and what it runs."""
