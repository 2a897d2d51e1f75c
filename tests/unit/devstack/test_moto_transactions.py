"""The local stack's DynamoDB keeps transactions all-or-nothing and isolated under concurrent requests, as
DynamoDB does (moto's own checks each condition just before writing its item, and a refused transaction puts
back copies of whole tables, undoing what other requests wrote meanwhile)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from devstack.cloud import start_moto
from support.devstack import free_port

CLIENTS = 50
CREDITS = 10
EARLIER_ROWS = 200  # what a ledger holds already: copying it makes moto's unprotected window wide


@pytest.fixture
def dynamodb() -> Iterator[object]:
    """A moto server as the devstack starts it, with one account holding CREDITS."""
    port = free_port()
    server = start_moto(port)
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
    requests.post(f"http://127.0.0.1:{port}/moto-api/reset", timeout=10)  # moto's state outlives its server
    server.stop()


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
    # Given threads that switch as often as a busy machine makes them (the server runs in this process)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        # When fifty clients debit one credit each at once
        with ThreadPoolExecutor(CLIENTS) as pool:
            accepted = sum(pool.map(lambda number: debit(dynamodb, number), range(CLIENTS)))
    finally:
        sys.setswitchinterval(previous)

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
