"""The HTTP service in-process: the whole funnel per request, events that change the next list,
cold start, new items, metrics, and clear 4xx answers for bad input (fuzzed: never a 5xx)."""

import json
import shutil
import time
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recfunnel.artifacts import add_items, load_system, write_manifest
from recfunnel.index.candidates import SOURCES
from recfunnel.serving.app import FOLLOW_SECONDS, Recommendations, create_app
from server_processes import eventually


@pytest.fixture()
def client(tmp_path, small_funnel_dir):
    served = tmp_path / "served"
    shutil.copytree(small_funnel_dir, served)
    with TestClient(create_app(served)) as c:
        yield c


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory, small_funnel_dir):
    """For read-mostly tests; the fuzz test only ever gets 4xx, which change nothing."""
    served = tmp_path_factory.mktemp("fuzz") / "served"
    shutil.copytree(small_funnel_dir, served)
    with TestClient(create_app(served), raise_server_exceptions=False) as c:
        yield c


def history_ids(client, user):
    return {i["item_id"] for i in client.get(f"/users/{user}/history?n=1000").json()["items"]}


def test_recommendations_run_the_whole_funnel(client):
    body = client.get("/users/3/recommendations?k=5&funnel=true").json()
    Recommendations.model_validate(body)  # what the OpenAPI docs say it is
    assert body["known_user"] is True and body["cold_start"] is None
    assert len(body["items"]) == 5 and [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    assert body["candidates"] > 5 and len(body["ranked"]) > 5
    assert set(body["latency_ms"]) == {"store", "user_tower", "retrieval", "ranking", "rerank"}
    seen = history_ids(client, 3)
    for item in body["items"]:
        assert item["item_id"] not in seen and item["title"]
        assert "Horror" not in item["genres"]  # the artifact's re-ranking rules
        why = item["explanation"]
        assert why["source"] in SOURCES
        assert {"retrieval_score", "ranking_score", "adjustments"} <= set(why)


def test_an_event_changes_the_next_list_at_once(client):
    first = client.get("/users/3/recommendations?k=5").json()["items"]
    watched = first[0]["item_id"]
    answer = client.post("/events", json={"user_id": "3", "item_id": watched, "timestamp": 2**40})
    assert answer.status_code == 201 and answer.json()["stored"] is True
    after = client.get("/users/3/recommendations?k=5").json()["items"]
    assert watched not in {i["item_id"] for i in after}
    assert client.get("/users/3/history?n=1").json()["items"][0]["item_id"] == watched


def test_a_dislike_is_never_recommended_and_a_rating_needs_a_value(client):
    item = client.get("/users/4/recommendations?k=1").json()["items"][0]["item_id"]
    assert client.post("/events", json={"user_id": "4", "item_id": item, "type": "rating"}) \
        .status_code == 422
    assert client.post("/events", json={"user_id": "4", "item_id": item, "type": "rating",
                                        "value": 1}).status_code == 201
    after = client.get("/users/4/recommendations?k=20").json()["items"]
    assert item not in {i["item_id"] for i in after}


def test_cold_start_from_demographics_or_popularity(client):
    demo = client.get("/users/newcomer/recommendations?k=5&age=25&gender=F").json()
    assert demo["known_user"] is False and demo["cold_start"] == "demographics"
    assert len(demo["items"]) == 5
    popular = client.get("/users/newcomer/recommendations?k=5").json()
    assert popular["cold_start"] == "popular"
    assert {i["explanation"]["source"] for i in popular["items"]} == {"popular"}
    assert client.get("/users/newcomer/history").status_code == 404


def test_new_item_is_served_at_once_and_ids_are_checked(client):
    added = client.post("/items", json={"item_id": "900001", "title": "Brand New (1999)",
                                        "genres": ["Comedy"], "year": 1999})
    assert added.status_code == 201 and added.json()["title"] == "Brand New (1999)"
    assert client.get("/items/900001/similar?k=3").status_code == 200
    assert client.get("/health").json()["items"] == 201
    assert client.post("/items", json={"item_id": "900001"}).status_code == 409
    assert client.post("/items", json={"item_id": "not-a-number"}).status_code == 400
    assert client.post("/events", json={"user_id": "1", "item_id": "900001"}).status_code == 201


def test_the_service_follows_a_version_another_process_wrote(tmp_path, small_funnel_dir):
    served = shutil.copytree(small_funnel_dir, tmp_path / "served")
    with TestClient(create_app(served)) as client:
        assert client.get("/items/900001/similar").status_code == 404
        other = load_system(served)  # as `recfunnel items add` would, while the server runs
        add_items(other, pd.DataFrame({"item_id": [900001], "title": ["Elsewhere (2001)"],
                                       "genres": [["Drama"]], "year": [2001.0]}))
        eventually(lambda: client.get("/items/900001/similar").status_code == 200,
                   what="loading the new version")
        assert client.get("/health").json()["items"] == 201
        # and an item added here now extends that version, not the one loaded first
        assert client.post("/items", json={"item_id": "900002"}).status_code == 201
    assert {900001, 900002} <= set(load_system(served).dataset.items["item_id"])


def test_a_broken_version_is_logged_once_and_the_loaded_one_kept(tmp_path, small_funnel_dir,
                                                                   caplog):
    served = shutil.copytree(small_funnel_dir, tmp_path / "served")
    manifest = served / "manifest.json"
    good = manifest.read_text()
    with TestClient(create_app(served)) as client:
        write_manifest(served, json.loads(good) | {"format_version": 999})
        time.sleep(6 * FOLLOW_SECONDS)
        assert client.get("/users/1/recommendations").status_code == 200
        failures = [r for r in caplog.records if "could not load" in r.getMessage()]
        assert len(failures) == 1 and "format 999" in failures[0].exc_text
        write_manifest(served, json.loads(good) | {"created": "a fixed version"})
        eventually(lambda: client.get("/health").json()["created"] == "a fixed version",
                   what="loading the fixed version")


def test_similar_items_and_unknown_ids(client):
    body = client.get("/items/1/similar?k=4").json()
    assert len(body["items"]) == 4 and "1" not in {i["item_id"] for i in body["items"]}
    assert client.get("/items/nope/similar").status_code == 404
    answer = client.post("/events", json={"user_id": "nobody", "item_id": "1"})
    assert answer.status_code == 404 and "unknown user" in answer.json()["detail"]


def test_metrics_and_health(client):
    client.get("/users/3/recommendations")
    text = client.get("/metrics").text
    assert 'recfunnel_stage_seconds_bucket{le="0.001",stage="ranking"}' in text
    assert "recfunnel_request_seconds_count" in text
    # answered past the router (_Shortcut), still counted under its route
    assert ('recfunnel_request_seconds_count{endpoint="/users/{user_id}/recommendations",'
            'status="200"}') in text
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/openapi.json").json()["info"]["title"] == "recfunnel"
    assert "<title>recfunnel</title>" in client.get("/").text


def test_openapi_documents_the_recommendation_query(shared_client):
    """The query is validated by hand (RecommendationQuery), so its docs are written by hand."""
    spec = shared_client.get("/openapi.json").json()
    parameters = spec["paths"]["/users/{user_id}/recommendations"]["get"]["parameters"]
    by_name = {p["name"]: p for p in parameters}
    assert by_name["user_id"]["in"] == "path"
    assert set(by_name) == {"user_id", "k", "age", "gender", "occupation", "zip", "funnel"}
    assert by_name["k"]["schema"]["maximum"] == 100 and by_name["k"]["schema"]["default"] == 10
    assert all(not by_name[n]["required"] for n in by_name if n != "user_id")


@pytest.mark.parametrize("method, path, body, status", [
    ("get", "/users/3/recommendations?k=0", None, 422),
    ("get", "/users/3/recommendations?k=1000", None, 422),
    ("get", "/users/3/recommendations?k=ten", None, 422),
    ("get", "/users/3/recommendations?age=-4", None, 422),
    ("get", "/users/3/recommendations?funnel=maybe", None, 422),
    ("get", "/users/3/recommendations?gender=" + "x" * 21, None, 422),
    ("post", "/users/3/recommendations", None, 405),
    ("post", "/events", {"user_id": "3"}, 422),
    ("post", "/events", {"user_id": "3", "item_id": "1", "type": "like"}, 422),
    ("post", "/events", {"user_id": "3", "item_id": "1", "timestamp": -1}, 422),
    ("post", "/events", {"user_id": "3", "item_id": "999999"}, 404),
    ("post", "/items", {"title": "no id"}, 422),
    ("post", "/admin/reload", {"artifacts": "/nonexistent"}, 400),
])
def test_bad_input_gets_a_clear_4xx(shared_client, method, path, body, status):
    answer = getattr(shared_client, method)(path, **({"json": body} if body is not None else {}))
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_malformed_json_is_a_422(shared_client):
    answer = shared_client.post("/events", content=b"{not json",
                                headers={"Content-Type": "application/json"})
    assert answer.status_code == 422


_text = st.text(min_size=0, max_size=30)
_scalar = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=False, allow_infinity=False) | _text)  # what JSON can carry
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_text, inner, max_size=4), max_leaves=8)
_event = st.fixed_dictionaries({}, optional={
    "user_id": _text | st.integers(), "item_id": _text | st.integers(),
    "type": st.sampled_from(["watch", "rating", "click", ""]), "value": _json,
    "timestamp": st.integers() | _text})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=_text, k=st.integers() | _text, age=st.integers() | _text,
       event=_event | _json, item=_json)
def test_fuzzed_requests_never_get_a_5xx(shared_client, user, k, age, event, item):
    """Random ids, query values and JSON bodies: every answer is a success or a 4xx."""
    user = quote(user, safe="")  # as any HTTP client sends an arbitrary id
    answers = [
        shared_client.get(f"/users/{user}/recommendations", params={"k": k, "age": age}),
        shared_client.get(f"/items/{user}/similar", params={"k": k}),
        shared_client.post("/events", json=event),
        # new items would be valid and slow (the catalog is re-embedded): ids are left out
        shared_client.post("/items", json=item if not isinstance(item, dict) else
                           {**item, "item_id": None}),
    ]
    for answer in answers:
        assert answer.status_code < 500, (answer.request.url, answer.text)


def test_serving_from_redis(tmp_path, small_funnel_dir, redis_server):
    """`index build --store redis` loads the server; the service then reads and writes there."""
    from typer.testing import CliRunner

    from recfunnel.cli import app
    from recfunnel.serving.service import StoreConfig
    from recfunnel.store.redis_store import RedisStore

    served = tmp_path / "served"
    shutil.copytree(small_funnel_dir, served)
    result = CliRunner().invoke(app, ["index", "build", "--artifacts", str(served), "--store",
                                      "redis", "--redis-url", redis_server])
    assert result.exit_code == 0, result.output
    with TestClient(create_app(served, StoreConfig("redis", redis_server))) as c:
        assert c.get("/health").json()["store"] == "redis"
        top = c.get("/users/3/recommendations?k=3").json()["items"][0]["item_id"]
        assert c.post("/events", json={"user_id": "3", "item_id": top}).status_code == 201
        assert top not in {i["item_id"] for i in c.get("/users/3/recommendations").json()["items"]}
    service = c.app.state.service
    with RedisStore(redis_server) as store:
        assert store.recent_items(service.user_ids["3"], 1).tolist() == [service.item_ids[top]]
