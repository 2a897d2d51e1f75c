"""The local stack's DynamoDB keeps transactions all-or-nothing and isolated under concurrent requests, as
DynamoDB does (moto's own checks each condition just before writing its item, and a refused transaction puts
back copies of whole tables, undoing what other requests wrote meanwhile)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from support.aws import ROOT
from support.devstack import free_port

CLIENTS = 50
CREDITS = 10
EARLIER_ROWS = 200  # what a ledger holds already: copying it makes moto's unprotected window wide
# moto's server as the devstack starts it, in its own process (its patches and config stay out of the unit
# tests' in-process moto), with threads that switch as often as a busy machine makes them
SERVER = """
import sys, time
sys.setswitchinterval(1e-5)
from devstack.cloud import start_moto
start_moto(int(sys.argv[1]))
print("ready", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def dynamodb() -> Iterator[object]:
    """A moto server as the devstack starts it, with one account holding CREDITS."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("layers/common/python", "infra"))}
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", SERVER, str(port)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    for table in ("accounts", "ledger"):
        client.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    client.put_item(TableName="accounts", Item={"pk": {"S": "ada"}, "balance": {"N": str(CREDITS)}})
    for number in range(EARLIER_ROWS):
        client.put_item(TableName="ledger", Item={"pk": {"S": f"earlier-{number}"}, "note": {"S": "x" * 200}})
    yield client
    server.terminate()
    server.wait(timeout=30)


def debit(client: object, number: int) -> bool:
    """One credit off the balance, with its ledger row, in one transaction; False when the balance is spent."""
    try:
        client.transact_write_items(  # type: ignore[attr-defined]
            TransactItems=[
                {
                    "Update": {
                        "TableName": "accounts",
                        "Key": {"pk": {"S": "ada"}},
                        "UpdateExpression": "SET balance = balance - :one",
                        "ConditionExpression": "balance >= :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "Put": {
                        "TableName": "ledger",
                        "Item": {"pk": {"S": f"debit-{number}"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except ClientError as error:
        assert error.response["Error"]["Code"] == "TransactionCanceledException", error
        return False
    return True


def test_concurrent_transactions_debit_no_more_than_the_balance_and_each_debit_keeps_its_row(
    dynamodb,
) -> None:
    # When fifty clients debit one credit each at once
    with ThreadPoolExecutor(CLIENTS) as pool:
        accepted = sum(pool.map(lambda number: debit(dynamodb, number), range(CLIENTS)))

    # Then ten were accepted, the balance is spent, and exactly their ten rows exist
    balance = dynamodb.get_item(TableName="accounts", Key={"pk": {"S": "ada"}}, ConsistentRead=True)["Item"]
    pages = dynamodb.get_paginator("scan").paginate(TableName="ledger")
    debits = [item for page in pages for item in page["Items"] if item["pk"]["S"].startswith("debit-")]
    assert (accepted, int(balance["balance"]["N"]), len(debits)) == (CREDITS, 0, CREDITS)


def test_a_refused_transaction_writes_none_of_its_items(dynamodb) -> None:
    # Given a ledger row that exists already
    dynamodb.put_item(TableName="ledger", Item={"pk": {"S": "debit-1"}})

    # When a transaction would debit the account but its row's condition fails
    assert not debit(dynamodb, 1)

    # Then the balance is untouched
    balance = dynamodb.get_item(TableName="accounts", Key={"pk": {"S": "ada"}}, ConsistentRead=True)["Item"]
    assert int(balance["balance"]["N"]) == CREDITS
