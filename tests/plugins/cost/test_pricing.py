"""The pricing table: packaged data with the issue's prices, model matching, user overrides."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from claudebatch_cost import CacheMultipliers, load_pricing, packaged_table

from claudebatch import ConfigurationError

# (model id, input $/MTok, output $/MTok): the list prices read 2026-12-01 (catalog.json).
LIST_PRICES = [
    ("claude-opus-5-5", "4", "20"),
    ("claude-sonnet-5-5", "2", "10"),
    ("claude-fable-5-1", "10", "50"),
    ("claude-mythos-5-1", "10", "50"),
    ("claude-fable-5-2", "8", "40"),
    ("claude-haiku-5-5", "0.10", "0.50"),
    ("claude-opus-5", "5", "25"),
    ("claude-opus-4-8", "5", "25"),
    ("claude-opus-4-7", "5", "25"),
    ("claude-opus-4-6", "5", "25"),
    ("claude-opus-4-5", "5", "25"),
    ("claude-opus-4-5-20251101", "5", "25"),
    ("claude-fable-5", "10", "50"),
    ("claude-mythos-5", "10", "50"),
    ("claude-sonnet-5", "2", "10"),
    ("claude-sonnet-4-6", "3", "15"),
    ("claude-sonnet-4-5", "3", "15"),
    ("claude-sonnet-4-5-20250929", "3", "15"),
    ("claude-haiku-4-5", "1", "5"),
    ("claude-haiku-4-5-20251001", "1", "5"),
    ("claude-opus-4-1", "15", "75"),
    ("claude-opus-4-1-20250805", "15", "75"),
    ("claude-opus-4-0", "15", "75"),
    ("claude-opus-4-20250514", "15", "75"),
    ("claude-sonnet-4-0", "3", "15"),
    ("claude-sonnet-4-20250514", "3", "15"),
    ("claude-3-7-sonnet-20250219", "3", "15"),
    ("claude-3-7-sonnet-latest", "3", "15"),
    ("claude-3-5-haiku-20241022", "0.80", "4"),
    ("claude-3-5-haiku-latest", "0.80", "4"),
    ("claude-3-haiku-20240307", "0.25", "1.25"),
    ("claude-3-opus-20240229", "15", "75"),
    ("claude-3-opus-latest", "15", "75"),
]


@pytest.mark.parametrize(("model", "input_price", "output_price"), LIST_PRICES)
def test_every_model_and_alias_has_its_list_price(model: str, input_price: str,
                                                  output_price: str) -> None:
    price = packaged_table().lookup(model)
    assert price is not None, model
    assert (price.input, price.output) == (Decimal(input_price), Decimal(output_price))
    assert isinstance(price.input, Decimal)


def test_the_table_is_dated_package_data_with_the_batch_rules() -> None:
    table = packaged_table()
    assert table.as_of == "2026-12-01"
    assert table.batch_multiplier == Decimal("0.5")
    assert table.web_search_per_1000 == Decimal(10)
    assert table.web_search_batch_discount is False


def test_cache_multipliers_default_and_haiku_3_override() -> None:
    table = packaged_table()
    sonnet = table.lookup("claude-sonnet-4-5")
    haiku3 = table.lookup("claude-3-haiku-20240307")
    assert sonnet is not None and haiku3 is not None
    assert sonnet.cache == CacheMultipliers(Decimal("1.25"), Decimal(2), Decimal("0.1"))
    rates = haiku3.per_token()  # Haiku 3 lists $0.30 5m writes, $0.50 1h, $0.03 reads
    assert rates["cache_write_5m"] * 1_000_000 == Decimal("0.30")
    assert rates["cache_write_1h"] * 1_000_000 == Decimal("0.50")
    assert rates["cache_read"] * 1_000_000 == Decimal("0.03")


@pytest.mark.parametrize(("model", "priced_as"), [
    ("claude-sonnet-4-5-20260301", "claude-sonnet-4-5-20250929"),  # a new snapshot
    ("claude-opus-4-6-20260205", "claude-opus-4-6"),
    ("claude-opus-4-20250601", "claude-opus-4-20250514"),  # date stripped from a known id
    ("claude-3-7-sonnet-20250301", "claude-3-7-sonnet-20250219"),
    ("claude-opus-4-5@20251101", "claude-opus-4-5-20251101"),  # Vertex-style
    ("claude-opus-4-1-20250805-v1", "claude-opus-4-1-20250805"),
])
def test_dated_variants_take_the_longest_known_prefix(model: str, priced_as: str) -> None:
    price = packaged_table().lookup(model)
    assert price is not None and price.model == priced_as


@pytest.mark.parametrize("model", [
    "claude-opus-4-9",            # a new model, not a snapshot: never priced as Opus 4
    "claude-opus-4-1-20250805x",
    "claude-sonnet-4-5-beta",
    "gpt-4o",
    "",
])
def test_models_that_are_not_snapshots_of_known_ones_are_unknown(model: str) -> None:
    assert packaged_table().lookup(model) is None


def test_a_json_file_adds_and_overrides_models(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {
        "claude-new-9": {"input": 7, "output": 21, "aliases": ["claude-new"]},
        "claude-haiku-4-5": {"input": "0.9", "output": 4.5},
    }}))
    table = load_pricing(path)
    new = table.lookup("claude-new")
    assert new is not None and (new.input, new.output) == (Decimal(7), Decimal(21))
    # Overriding the alias replaces the price under every name of that model,
    # including the dated id results report.
    for name in ("claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20270101"):
        price = table.lookup(name)
        assert price is not None and price.output == Decimal("4.5"), name
        assert price.input == Decimal("0.9")
    untouched = table.lookup("claude-sonnet-4-5")
    assert untouched is not None and untouched.input == Decimal(3)


def test_a_json_file_can_change_the_table_settings(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"as_of": "2027-01-01", "web_search_batch_discount": True,
                                "models": {"my-model": {"input": 1, "output": 2,
                                                        "cache_multipliers": {"read": 0.2}}}}))
    table = load_pricing(str(path))
    assert table.as_of == "2027-01-01" and table.web_search_batch_discount is True
    mine = table.lookup("my-model")
    assert mine is not None and mine.cache.read == Decimal("0.2")
    assert mine.cache.write_5m == Decimal("1.25")


def test_a_csv_file_adds_models(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("model,input,output,aliases,write_5m,read\n"
                    "acme-1-20260101,2.5,12.5,acme-1 acme-latest,1.5,\n")
    table = load_pricing(path)
    price = table.lookup("acme-latest")
    assert price is not None and price.model == "acme-1-20260101"
    assert (price.input, price.output) == (Decimal("2.5"), Decimal("12.5"))
    assert price.cache.write_5m == Decimal("1.5") and price.cache.read == Decimal("0.1")


def test_a_mapping_adds_models_and_floats_keep_their_decimal_value() -> None:
    table = load_pricing({"my-model": {"input": 0.8, "output": 4}})
    price = table.lookup("my-model")
    assert price is not None and price.input == Decimal("0.8")


@pytest.mark.parametrize("bad", [
    {"m": {"input": 1}},
    {"m": {"input": "cheap", "output": 1}},
    {"m": {"input": -1, "output": 1}},
    {"m": {"input": 1, "output": 1, "cache_multipliers": {"write_2h": 3}}},
    {"models": ["m"]},
])
def test_bad_pricing_is_a_configuration_error_naming_the_model(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigurationError, match="pricing"):
        load_pricing(bad)


def test_missing_and_malformed_files_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_pricing(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_pricing(tmp_path / "bad.json")
    (tmp_path / "bad.csv").write_text("name,price\nx,1\n")
    with pytest.raises(ConfigurationError, match="model, input, output"):
        load_pricing(tmp_path / "bad.csv")


@pytest.mark.parametrize(("model", "read"), [
    ("claude-opus-5-5", "0.20"), ("claude-fable-5-1", "0.25"), ("claude-sonnet-5-5", "0.20"),
    ("claude-opus-5", "0.50"), ("claude-haiku-5-5", "0.01")])
def test_cache_reads_carry_each_models_own_multiplier(model: str, read: str) -> None:
    price = packaged_table().lookup(model)
    assert price is not None
    assert price.rates["cache_read"] * 1_000_000 == Decimal(read)


def test_every_current_model_names_its_source_and_the_table_its_date() -> None:
    table = packaged_table()
    for model in ("claude-opus-5-5", "claude-fable-5-1", "claude-sonnet-5",
                  "claude-haiku-5-5", "claude-fable-5-2"):
        price = table.lookup(model)
        assert price is not None and price.source, model
    assert table.lookup("claude-opus-5-5").released == "2026-09-22"  # type: ignore[union-attr]
    assert table.lookup("claude-opus-4-5").retires == "2027-01-22"  # type: ignore[union-attr]


def test_a_price_is_the_one_in_force_on_the_day_asked(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"claude-new-1": {
        "input": 3, "output": 15, "source": "cut on 2026-10-01",
        "earlier": [{"until": "2026-09-30", "input": 4, "output": 20,
                     "cache_multipliers": {"read": 0.2}},
                    {"until": "2026-06-30", "input": 6, "output": 30}]}}}))
    table = load_pricing(str(path))
    import datetime as dt

    def price_on(day: object) -> tuple[Decimal, Decimal, Decimal]:
        found = table.lookup("claude-new-1", at=day)  # type: ignore[arg-type]
        assert found is not None
        return found.input, found.output, found.cache.read

    assert price_on("2026-06-30") == (6, 30, Decimal("0.1"))
    assert price_on("2026-07-01") == (4, 20, Decimal("0.2"))
    assert price_on(dt.datetime(2026, 9, 30, 23, 59, tzinfo=dt.timezone.utc)) == (
        4, 20, Decimal("0.2"))
    # a UTC day: 20:00 in New York on 30 Sep is already 1 Oct in UTC
    new_york = dt.timezone(dt.timedelta(hours=-4))
    assert price_on(dt.datetime(2026, 9, 30, 20, 0, tzinfo=new_york)) == (3, 15, Decimal("0.1"))
    assert price_on(None) == price_on("2027-01-01") == (3, 15, Decimal("0.1"))


def test_inference_geo_multipliers_are_dated_package_data() -> None:
    table = packaged_table()
    assert table.geo_multiplier("us") == Decimal("1.1")
    assert table.geo_multiplier("global") == table.geo_multiplier(None) == 1


@pytest.mark.parametrize("entry, words", [
    ({"input": 1, "output": 2, "earlier": [{"until": "soon", "input": 1, "output": 2}]},
     "until must be a date"),
    ({"input": 1, "output": 2, "earlier": [{"input": 1}]}, "needs until, input and output"),
    ({"input": 1, "output": 2, "long_prompt": {"above": "x", "input": 1, "output": 2}},
     "long_prompt.above must be a whole number"),
    ({"input": 1, "output": 2, "released": "2026-13-01"}, "released must be a date"),
])
def test_bad_dated_entries_are_named(tmp_path: Path, entry: object, words: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"m": entry}}))
    with pytest.raises(ConfigurationError, match=words):
        load_pricing(str(path))


def test_a_days_price_reads_iso_strings_in_utc_and_refuses_anything_else(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"m": {
        "input": 3, "output": 15,
        "earlier": [{"until": "2026-08-31", "input": 4, "output": 20}]}}}))
    price = load_pricing(str(path)).lookup("m")
    assert price is not None
    assert price.at("2026-08-31T22:00:00-05:00").input == 3  # 03:00 UTC on 1 September
    assert price.at("2026-08-31T23:59:59Z").input == 4
    with pytest.raises(ValueError, match="ISO date"):
        price.at("yesterday")
    path.write_text(json.dumps({"models": {"m": {
        "input": 3, "output": 15, "earlier": [{"until": None, "input": 4, "output": 20}]}}}))
    with pytest.raises(ConfigurationError, match="until must be a date"):
        load_pricing(str(path))
