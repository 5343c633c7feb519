"""The process environment that boto3 and moto need for the emulated AWS, in one place."""

import os

from functions.settings import VARIABLES

REGION = "us-east-1"

EMULATOR_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    # botocore 1.44 routes DynamoDB to account-based endpoints that moto does not intercept:
    # under mock_aws, DynamoDB Streams calls then answer 404 "Not yet implemented".
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


def use_emulator(stage_environment: dict[str, str], endpoint: str | None = None) -> None:
    """Point this process at the emulator: fake credentials, the stage's variables.

    Every settings variable the stage does not set is removed first, so each process of the
    local stack (emulator, runner, ``chalice local``, ``blog``) reads the stage's settings and
    nothing from the shell: two processes that disagreed on, say, the archive's segment size
    would file and look for positions in different buckets.
    """
    for variable in VARIABLES:
        os.environ.pop(variable, None)
    os.environ.update(EMULATOR_ENVIRONMENT)
    os.environ.update(stage_environment)
    if endpoint is not None:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
