"""``regard import … --format shopify|woocommerce``: the shops' own exports as they are."""

from __future__ import annotations

import json

from conftest import Workspace
from import_helpers import contact, rows
from shop_exports import shopify_customers, shopify_orders, woo_customer, woo_order

CUSTOMERS = shopify_customers(
    {
        "Customer ID": "'7012345678901", "First Name": "Jürgen", "Last Name": "Weiß",
        "Email": "Juergen.Weiss@Example.DE", "Accepts Email Marketing": "yes",
        "Default Address Company": "Blumenhaus Weiß", "Default Address Address1": "Lindenstraße 5",
        "Default Address Address2": "Hinterhaus", "Default Address City": "Dresden",
        "Default Address Country Code": "DE", "Default Address Zip": "'01067",
        "Default Address Phone": "'+49 351 1234567", "Accepts SMS Marketing": "no",
        "Total Spent": "129.80", "Total Orders": "2", "Tags": "B2B, Großkunde",
    },
    {
        "Customer ID": "'7012345678902", "First Name": "Zoë", "Last Name": "Grünewald",
        "Email": "zoe@example.ch", "Accepts Email Marketing": "no",
        "Default Address City": "Zürich", "Default Address Country Code": "CH",
        "Default Address Zip": "8001", "Phone": "'+41 44 668 18 00", "Tags": "",
    },
)  # fmt: skip

ORDERS = shopify_orders(
    {
        "Name": "#1001", "Email": "juergen.weiss@example.de", "Financial Status": "paid",
        "Paid at": "2026-03-10 15:03:07 +0100", "Fulfillment Status": "fulfilled",
        "Currency": "EUR", "Subtotal": "85.00", "Shipping": "4.90", "Taxes": "14.35",
        "Total": "89.90", "Created at": "2026-03-10 15:01:00 +0100", "Refunded Amount": "0.00",
        "Id": "'5550001", "Billing Name": "Jürgen Weiß", "Source": "web",
        "items": [("Rosenstrauß „Anna“", 1, "45.00", "ROSE-1"), ("Vase", 2, "20.00", "VASE-2")],
    },
    {
        "Name": "#1002", "Email": "JUERGEN.WEISS@EXAMPLE.DE", "Financial Status": "partially_refunded",
        "Paid at": "", "Currency": "EUR", "Total": "39.90", "Refunded Amount": "10.00",
        "Created at": "2026-03-12 09:00:00 +0100", "Id": "5550002",
        "items": [("Tulpen", 3, "13.30", "TULP-3")],
    },
    {
        "Name": "#1003", "Email": "zoe@example.ch", "Financial Status": "refunded",
        "Paid at": "2026-03-15 18:30:00 +0100", "Currency": "CHF", "Total": "120.00",
        "Refunded Amount": "120.00", "Created at": "2026-03-15 18:29:00 +0100",
        "Cancelled at": "2026-03-16 08:00:00 +0100", "Id": "5550003",
        "items": [("Orchidee", 1, "120.00", "ORCH-1")],
    },
    {
        "Name": "#1004", "Email": "", "Financial Status": "paid", "Total": "15.00",
        "Created at": "2026-03-18 10:00:00 +0100", "Id": "5550004", "Currency": "EUR",
        "items": [("Karte", 1, "15.00", "KART-1")],
    },
)  # fmt: skip


def test_shopify_customer_export(workspace: Workspace) -> None:
    path = workspace.write("customers_export.csv", CUSTOMERS)
    result = workspace.cli_json("import", "contacts", str(path), "--format", "shopify")
    assert result["inserted"] == 2 and result["problems"] == []
    db = workspace.store_target
    c = contact(db, "7012345678901")  # the leading ' is gone
    assert (c["first_name"], c["last_name"], c["company"]) == ("Jürgen", "Weiß", "Blumenhaus Weiß")
    assert c["street"] == "Lindenstraße 5, Hinterhaus"
    assert (c["postal_code"], c["city"], c["country"]) == ("01067", "Dresden", "DE")
    assert c["phone"] == "+493511234567" and c["email"] == "Juergen.Weiss@example.de"
    assert (c["consent_email"], c["consent_sms"]) == (1, 0)
    assert json.loads(c["tags"]) == ["b2b", "großkunde"]
    # the shop's own lifetime counters, as attributes beside the orders regard derives
    attributes = json.loads(c["attributes"])
    assert "Total Spent" not in attributes
    assert (attributes["shop_orders"], attributes["shop_spent"]) == (2, 129.8)
    assert c["order_count"] == 0  # no order imported yet
    zoe = contact(db, "7012345678902")
    assert "shop_orders" not in json.loads(zoe["attributes"])  # an empty cell
    assert zoe["phone"] == "+41446681800" and zoe["tags"] == "[]"


def test_shopify_orders_export_one_row_per_line_item(workspace: Workspace) -> None:
    workspace.cli(
        "import", "contacts", str(workspace.write("c.csv", CUSTOMERS)), "--format", "shopify"
    )
    path = workspace.write("orders_export.csv", ORDERS)
    result = workspace.cli_json("import", "events", str(path), "--format", "shopify")
    assert result["problems"] == []
    assert (result["rows"], result["inserted"], result["ignored"]) == (3, 3, 1)
    db = workspace.store_target
    events = {r["id"]: r for r in rows(db, "SELECT * FROM events ORDER BY id")}
    first = events["5550001"]
    assert first["contact_id"] == "7012345678901"
    assert first["occurred_at"] == 1773151387  # 2026-03-10 15:03:07 +0100 (Paid at)
    assert first["amount"] == 89.90 and first["currency"] == "EUR"
    properties = json.loads(first["properties"])
    assert properties["name"] == "#1001" and properties["source"] == "shopify"
    assert [(i["name"], i["quantity"], i["price"]) for i in properties["items"]] == [
        ("Rosenstrauß „Anna“", 1, 45.0),
        ("Vase", 2, 20.0),
    ]  # the later line-item rows did not overwrite the order's total
    second = events["5550002"]  # found by e-mail in another case; no Paid at: Created at
    assert second["contact_id"] == "7012345678901" and second["amount"] == 29.90
    assert second["occurred_at"] == 1773302400
    refunded = events["5550003"]  # fully refunded and cancelled: voided, amount 0, CHF
    assert refunded["amount"] == 0 and refunded["currency"] == "CHF"
    assert refunded["voided_at"] == 1773644400
    c = contact(db, "7012345678901")
    assert c["order_count"] == 2 and round(c["total_spent"], 2) == 119.80
    assert contact(db, "7012345678902")["order_count"] == 0  # the voided order counts for nothing
    again = workspace.cli_json("import", "events", str(path), "--format", "shopify")
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_shopify_order_of_an_unknown_customer_is_a_bad_row(workspace: Workspace) -> None:
    path = workspace.write("orders_export.csv", ORDERS)
    result = workspace.cli("import", "events", str(path), "--format", "shopify")
    assert result.exit_code == 1
    assert (
        f"{path}:2: Email: no contact has the e-mail 'juergen.weiss@example.de' "
        "(import the customer export first)" in result.stderr
    )
    assert rows(workspace.store_target, "SELECT id FROM events") == []


def test_skip_invalid_keeps_the_customer_with_a_bad_phone_and_their_orders(
    workspace: Workspace,
) -> None:
    bad = CUSTOMERS.replace("'+49 351 1234567", "'0351 12")
    path = workspace.write("customers_export.csv", bad)
    rejected = workspace.cli("import", "contacts", str(path), "--format", "shopify")
    assert rejected.exit_code == 1
    assert f"{path}:2: phone: '0351 12' is not a valid phone number" in rejected.stderr
    result = workspace.cli("import", "contacts", str(path), "--format", "shopify", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert f"{path}:2: phone: '0351 12' is not a valid phone number (dropped)" in result.stderr
    assert "2 rows: 2 new" in result.stdout and "1 bad optional fields dropped" in result.stdout
    db = workspace.store_target
    c = contact(db, "7012345678901")
    assert c["phone"] is None and c["city"] == "Dresden"
    orders = workspace.write("orders_export.csv", ORDERS)
    assert workspace.cli("import", "events", str(orders), "--format", "shopify").exit_code == 0
    assert contact(db, "7012345678901")["order_count"] == 2


def test_woocommerce_rest_arrays(workspace: Workspace) -> None:
    customers = [
        woo_customer(17, "Jörg", "Müller", "joerg@example.ch", city="Zürich", postcode="8001",
                     country="CH", address_1="Hauptstraße 3", phone="+41 44 668 18 00"),
        woo_customer(18, "Änne", "Schäfer", "aenne@example.de", country="DE"),
    ]  # fmt: skip
    path = workspace.write("customers.json", json.dumps(customers, ensure_ascii=False, indent=2))
    result = workspace.cli_json("import", "contacts", str(path), "--format", "woocommerce")
    assert result["inserted"] == 2, result
    db = workspace.store_target
    c = contact(db, "17")
    assert (c["city"], c["country"], c["phone"]) == ("Zürich", "CH", "+41446681800")
    orders = [
        woo_order(501, 17, "joerg@example.ch", "49.90", currency="CHF"),
        woo_order(502, 17, "joerg@example.ch", "30.00", refunds=["-10.00"]),
        woo_order(503, 0, "Gast@Example.DE", "25.00", first="Gisela", last="Gast"),
        woo_order(504, 18, "aenne@example.de", "12.00", status="pending", paid=None),
        woo_order(505, 18, "aenne@example.de", "12.00", status="cancelled"),
    ]
    path = workspace.write("orders.json", json.dumps(orders, ensure_ascii=False))
    result = workspace.cli_json("import", "events", str(path), "--format", "woocommerce")
    assert result["problems"] == []
    assert (result["inserted"], result["ignored"]) == (4, 1)
    events = {r["id"]: r for r in rows(db, "SELECT * FROM events")}
    assert events["501"]["currency"] == "CHF" and events["501"]["amount"] == 49.90
    assert events["502"]["amount"] == 20.0  # the refund counts
    assert events["503"]["contact_id"] == "guest:gast@example.de"
    assert contact(db, "guest:gast@example.de")["first_name"] == "Gisela"
    assert events["505"]["voided_at"] is not None
    assert contact(db, "17")["order_count"] == 2
    assert contact(db, "18")["order_count"] == 0


def test_shopify_admin_rest_arrays_through_the_webhooks_mapping(workspace: Workspace) -> None:
    customer = {
        "id": 7012345678903, "email": "Ilse@Example.AT", "first_name": "Ilse",
        "last_name": "Öztürk", "locale": "de-AT", "tags": "VIP, Stammkundin",
        "default_address": {"address1": "Mariahilfer Straße 1", "city": "Wien", "zip": "1060",
                            "country_code": "AT", "phone": "+43 1 5123456"},
    }  # fmt: skip
    path = workspace.write("customers.json", json.dumps([customer], ensure_ascii=False))
    assert (
        workspace.cli_json("import", "contacts", str(path), "--format", "shopify")["inserted"] == 1
    )
    db = workspace.store_target
    c = contact(db, "7012345678903")
    assert (c["locale"], c["city"], c["phone"]) == ("de", "Wien", "+4315123456")
    assert json.loads(c["tags"]) == ["vip", "stammkundin"]
    orders = [
        {"id": 820001, "name": "#2001", "processed_at": "2026-03-10T15:03:07+01:00",
         "current_total_price": "80.00", "total_price": "100.00", "currency": "EUR",
         "financial_status": "partially_refunded", "customer": customer,
         "line_items": [{"sku": "ROSE-1", "title": "Rosen", "quantity": 2, "price": "50.00"}]},
        {"id": 820002, "name": "#2002", "processed_at": "2026-03-11T10:00:00+01:00",
         "total_price": "5.00", "currency": "EUR", "customer": None, "line_items": []},
    ]  # fmt: skip
    path = workspace.write("orders.json", json.dumps(orders, ensure_ascii=False))
    result = workspace.cli_json("import", "events", str(path), "--format", "shopify")
    assert (result["inserted"], result["ignored"]) == (1, 1)
    event = rows(db, "SELECT amount, occurred_at FROM events WHERE id = '820001'")[0]
    assert event["amount"] == 80.0 and event["occurred_at"] == 1773151387


def test_woocommerce_skip_invalid_keeps_the_order_of_a_customer_with_a_bad_phone(
    workspace: Workspace,
) -> None:
    order = woo_order(701, 0, "gast@example.ch", "19.90", currency="CHF")
    order["billing"]["phone"] = "12"
    path = workspace.write("orders.json", json.dumps([order]))
    rejected = workspace.cli("import", "events", str(path), "--format", "woocommerce")
    assert (
        rejected.exit_code == 1
        and f"{path}:1: phone: '12' is not a valid phone number" in rejected.stderr
    )
    result = workspace.cli_json(
        "import", "events", str(path), "--format", "woocommerce", "--skip-invalid"
    )
    assert result["inserted"] == 1 and result["dropped"] == 1
    assert contact(workspace.store_target, "guest:gast@example.ch")["order_count"] == 1
