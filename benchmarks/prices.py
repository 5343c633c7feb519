"""AWS's on-demand list prices for us-east-1, each with where it was read and when, and the
prices of the cost benchmark's line items.

AWS's own pricing pages draw their figures in the browser, so the stored copies this project can
read carry the units and rules but not the dollars; each figure below is AWS's published price
as transcribed by the dated page named beside it (several agreeing where found), and the rules
(what a request is, what is free) are quoted from AWS's pages. Check the pricing pages before
relying on a figure.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1"
CHECKED = "2026-12-06"
MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    dollars: float
    per: str
    source: str
    dated: str
    quoted_per: int = MILLION
    """How AWS quotes it: per million requests, per 1,000, or per one (1)."""

    def quoted(self) -> str:
        amount = self.dollars * self.quoted_per
        text = f"{amount:.2f}" if round(amount, 2) == amount else f"{amount:.10f}".rstrip("0")
        per = {1: "", MILLION: " per million"}.get(self.quoted_per, f" per {self.quoted_per:,}")
        return f"${text}{per}"


PRICES = {
    "api_gateway_request": Price(
        3.50 / MILLION,
        "REST API request (first 333 million a month)",
        "AWS whitepaper 'Best Practices for Designing Amazon API Gateway Private APIs', "
        "table 4; awsforengineers.com",
        "2025-05-19",
    ),
    "lambda_request": Price(
        0.20 / MILLION,
        "Lambda request",
        "aws.amazon.com/lambda/pricing (text); cloudchipr.com",
        "2024",
    ),
    "lambda_gb_second": Price(
        0.0000166667,
        "Lambda GB-second, x86, first 6 billion a month, billed per 1 ms",
        "Lambda FAQ (tiers); cloudchipr.com (us-east-1); web.archive.org copy of "
        "aws.amazon.com/lambda/pricing (1 ms rounding)",
        "2026-06-18",
        quoted_per=1,
    ),
    "dynamodb_write_unit": Price(
        0.625 / MILLION,
        "DynamoDB on-demand write request unit (Standard table class, after the 50% cut of "
        "2024-11-01)",
        "airbyte.com DynamoDB pricing guide; awslabs/graphrag-toolkit pull request 439",
        "2025-07-21",
    ),
    "dynamodb_read_unit": Price(
        0.125 / MILLION,
        "DynamoDB on-demand read request unit",
        "airbyte.com DynamoDB pricing guide; awslabs/graphrag-toolkit pull request 439",
        "2025-07-21",
    ),
    "sns_request": Price(
        0.50 / MILLION,
        "SNS standard topic request (each 64 KB chunk; deliveries to SQS free)",
        "SNS FAQ (64 KB chunks); factualminds.com SNS pricing",
        "2026-06-13",
    ),
    "sqs_request": Price(
        0.40 / MILLION,
        "SQS standard queue request (each 64 KB chunk; a batch of up to 10 is one)",
        "cloudburn.io SQS pricing; factualminds.com SQS pricing",
        "2026-03-14",
    ),
    "s3_put": Price(
        0.005 / 1000,
        "S3 Standard PUT, COPY, POST or LIST request",
        "awsi.click S3 request pricing (us-east-1); c3x.dev",
        "2026",
        quoted_per=1000,
    ),
    "s3_get": Price(
        0.0004 / 1000,
        "S3 Standard GET request",
        "awsi.click S3 request pricing (us-east-1); c3x.dev",
        "2026",
        quoted_per=1000,
    ),
    "logs_gb": Price(
        0.50,
        "CloudWatch Logs ingestion, per GB (Standard log class)",
        "c3x.dev CloudWatch Logs costs ('us-east-1, June 2026'); hykell.com",
        "2026-06",
        quoted_per=1,
    ),
    "custom_metric_month": Price(
        0.30,
        "CloudWatch custom metric a month (first 10,000; embedded-metric-format metrics are "
        "custom metrics)",
        "signoz.io CloudWatch pricing; CloudWatch User Guide (EMF)",
        "2026-02-15",
        quoted_per=1,
    ),
    "alarm_month": Price(
        0.10,
        "CloudWatch standard-resolution alarm a month",
        "a third-party pricing table only",
        "unknown",
        quoted_per=1,
    ),
    "kms_key_month": Price(
        1.00, "KMS customer managed key a month", "aws.amazon.com/kms/pricing", "2026", 1
    ),
    "kms_request": Price(
        0.03 / 10_000,
        "KMS symmetric request",
        "wring.co KMS pricing; factualminds.com",
        "2026-03-15",
        quoted_per=10_000,
    ),
}


def dollars(name: str, quantity: float) -> float:
    return PRICES[name].dollars * quantity
