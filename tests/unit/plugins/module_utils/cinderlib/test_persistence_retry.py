# The state store's retry window (persistence.retry_window): the retry loop's
# deadline arithmetic on a fake clock, the option's validation, which errors count
# as a lost connection, and the store's one rule over a real PostgreSQL server (a
# connection the server ends is replaced; a store given up on is tried once). A
# stopped and restarted server: tests/functional/test_store_outage.py.
from __future__ import annotations

import math
import sqlite3
import threading
import time

import psycopg2
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib import persistence, quickcheck
from ansible_collections.cinderlib.storage.plugins.module_utils.cinderlib.exceptions import PersistenceError


class Clock:
    """Time that passes only in ``sleep``: attempts take no time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Lost(Exception):
    """Stands for a lost connection (``lost`` below says so)."""


def lost(exc: BaseException) -> bool:
    return isinstance(exc, Lost)


def attempts(outcomes: list):
    """A unit that raises or returns each of ``outcomes`` in turn; ``calls`` counts them."""
    def unit():
        unit.calls += 1
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    unit.calls = 0
    return unit


def retry(unit, window, clock, retries=None):
    return persistence.retry_while_unreachable(
        unit, window, lost, on_retry=None if retries is None else lambda exc, waited: retries.append((exc, waited)),
        clock=clock, sleep=clock.sleep)


# -- the loop ------------------------------------------------------------------------------
def test_a_unit_that_works_is_run_once():
    clock, retries = Clock(), []
    unit = attempts(['ok'])
    assert retry(unit, 12, clock, retries) == 'ok'
    assert (unit.calls, clock.sleeps, retries) == (1, [], [])


def test_waits_double_from_a_quarter_second_and_the_return_is_reported_with_the_time_waited():
    clock, retries = Clock(), []
    first = Lost('refused')
    unit = attempts([first, Lost('refused'), Lost('refused'), 'ok'])
    assert retry(unit, 12, clock, retries) == 'ok'
    assert clock.sleeps == [0.25, 0.5, 1.0]
    # Once when the retries start, once when the store answers again (from the first failure).
    assert retries == [(first, None), (first, 1.75)]


def test_the_window_ends_with_an_attempt_at_its_end_then_the_last_error():
    clock = Clock()
    last = Lost('still refused')
    unit = attempts([Lost('refused')] * 5 + [last])
    with pytest.raises(Lost) as error:
        retry(unit, 5, clock)
    assert error.value is last
    # 0.25 + 0.5 + 1 + 2 (the cap) and the 1.25 s left: never past the window.
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0, 1.25]
    assert math.isclose(sum(clock.sleeps), 5) and unit.calls == 6


def test_the_waits_stay_at_two_seconds_in_a_long_window():
    clock = Clock()
    unit = attempts([Lost('refused')] * 20)
    with pytest.raises(Lost):
        retry(unit, 12, clock)
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.25]


def test_a_window_of_zero_tries_once():
    clock, retries = Clock(), []
    unit = attempts([Lost('refused'), 'never reached'])
    with pytest.raises(Lost):
        retry(unit, 0, clock, retries)
    assert (unit.calls, clock.sleeps, retries) == (1, [], [])


@pytest.mark.parametrize('outcomes', [[ValueError('bad data')], [Lost('refused'), ValueError('bad data')]],
                         ids=['at once', 'after a retry'])
def test_other_errors_are_raised_at_once(outcomes):
    clock = Clock()
    unit = attempts(list(outcomes) + ['never reached'])
    with pytest.raises(ValueError):
        retry(unit, 12, clock)
    assert unit.calls == len(outcomes)


# -- the option -------------------------------------------------------------------------------
@pytest.mark.parametrize('value, seconds', [(None, 12.0), (0, 0.0), (2, 2.0), (0.5, 0.5)])
def test_retry_window_values(value, seconds):
    assert persistence.retry_window_seconds(value) == seconds


@pytest.mark.parametrize('value', ['5', 'soon', -1, -0.5, True, float('nan'), float('inf'), [1]])
def test_retry_window_must_be_a_number_of_seconds(value):
    with pytest.raises(PersistenceError) as error:
        persistence.retry_window_seconds(value)
    assert str(error.value) == ('persistence.retry_window must be a number of seconds, 0 or more (0: try the state '
                                'store once), not %r.' % (value,))


def test_open_store_checks_the_option_and_sqlite_does_not_retry(tmp_path):
    with pytest.raises(PersistenceError, match=r'^persistence\.retry_window must be'):
        persistence.open_store({'connection': 'sqlite:///%s' % (tmp_path / 's.db'), 'retry_window': -1})
    assert persistence.open_store({'connection': 'sqlite:///%s' % (tmp_path / 's.db'), 'retry_window': 30}
                                  ).retry_window == 0
    with pytest.raises(PersistenceError, match=r"^Unknown persistence option\(s\) for storage 'memory': retry_window"):
        persistence.open_store({'storage': 'memory', 'retry_window': 1})


def test_the_fast_path_checks_the_option_too(tmp_path):
    path = tmp_path / 's.db'
    persistence.open_store({'connection': 'sqlite:///%s' % path}).close()
    with pytest.raises(PersistenceError, match=r'^persistence\.retry_window must be'):
        quickcheck.open_reader({'connection': 'sqlite:///%s' % path, 'retry_window': 'soon'})


# -- what counts as a lost connection -----------------------------------------------------------
class PgError(Exception):
    """A DBAPI error with a SQLSTATE, as psycopg2 raises for a server's error."""

    def __init__(self, pgcode: str) -> None:
        super().__init__('server error %s' % pgcode)
        self.pgcode = pgcode


def wrapped(orig: Exception, cls=sa.exc.OperationalError, invalidated: bool = False) -> sa.exc.DBAPIError:
    return cls('SELECT 1', None, orig, connection_invalidated=invalidated)


REFUSED = ('connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
           '\tIs the server running on that host and accepting TCP/IP connections?')


@pytest.mark.parametrize('error, expected', [
    (wrapped(Exception('whatever'), invalidated=True), True),
    (wrapped(psycopg2.OperationalError(REFUSED)), True),
    (wrapped(psycopg2.OperationalError('server closed the connection unexpectedly')), True),
    (wrapped(psycopg2.OperationalError('connection to server at "h", port 5432 failed: FATAL:  the database system '
                                       'is starting up')), True),
    (wrapped(psycopg2.OperationalError('connection to server at "h", port 5432 failed: FATAL:  sorry, too many '
                                       'clients already')), True),
    (wrapped(psycopg2.OperationalError('connection to server at "h", port 5432 failed: FATAL:  password '
                                       'authentication failed for user "cinderlib"')), False),
    (wrapped(psycopg2.OperationalError('connection to server at "h", port 5432 failed: FATAL:  database "x" does '
                                       'not exist')), False),
    (wrapped(PgError('08006')), True),  # connection failure
    (wrapped(PgError('57P01')), True),  # admin shutdown
    (wrapped(PgError('57P03')), True),  # cannot connect now
    (wrapped(PgError('23505')), False),  # unique violation
    (wrapped(PgError('40001')), False),  # serialization failure: the statement's, not the connection's
    (wrapped(psycopg2.IntegrityError('duplicate key'), sa.exc.IntegrityError), False),
    (wrapped(psycopg2.ProgrammingError('syntax error'), sa.exc.ProgrammingError), False),
    (wrapped(sqlite3.OperationalError('database is locked')), False),
    (PersistenceError('not a database error'), False),
    (ValueError('bug'), False),
], ids=['invalidated', 'refused', 'closed', 'starting-up', 'too-many-clients', 'wrong-password', 'no-database',
        '08006', '57P01', '57P03', '23505', '40001', 'integrity', 'programming', 'sqlite-locked', 'library', 'other'])
def test_which_errors_are_a_lost_connection(error, expected):
    assert persistence.connection_lost(error) is expected


# -- the store's rule, on a real server ------------------------------------------------------------
def volume(vid: str) -> dict:
    return {'id': vid, 'display_name': vid, 'backend': 'lvm', 'size': 1, 'status': 'available'}


def test_a_connection_the_server_ended_is_replaced(postgresql_store_url, postgresql_server):
    store = persistence.SQLStore(postgresql_store_url)
    try:
        store.put('volume', volume('v1'))  # a connection now waits in the pool
        with postgresql_server.admin() as conn, conn.cursor() as cur:
            cur.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> '
                        'pg_backend_pid()', (make_url(postgresql_store_url).database,))
            assert cur.rowcount >= 1
        # The pool's check on checkout (pool_pre_ping) finds it dead and connects again.
        assert [r['id'] for r in store.volume_records()] == ['v1']
    finally:
        store.close()


def test_a_query_whose_connection_is_ended_is_run_again(postgresql_store_url, postgresql_server):
    # An outage in the middle of a unit: the server ends the session (SQLSTATE
    # 57P01, as a fast shutdown does); the unit is run again on a new connection.
    store = persistence.SQLStore(postgresql_store_url, retry_window=30)
    database = make_url(postgresql_store_url).database
    runs = []

    def unit():
        runs.append(None)
        with store._engine.connect() as conn:
            if len(runs) == 1:
                conn.execute(sa.text('SELECT pg_sleep(60)'))
            return conn.execute(sa.text('SELECT 42')).scalar_one()

    def terminate():
        deadline = time.monotonic() + 60
        with postgresql_server.admin() as conn, conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND "
                            "query LIKE 'SELECT pg_sleep%%'", (database,))
                if cur.rowcount:
                    return
                time.sleep(0.05)

    killer = threading.Thread(target=terminate)
    killer.start()
    try:
        assert store._run('read', unit) == 42
        assert len(runs) == 2
    finally:
        killer.join()
        store.close()


def test_a_store_that_stayed_unreachable_for_a_window_is_tried_once_then(postgresql_store_url):
    store = persistence.SQLStore(postgresql_store_url, retry_window=0.3)
    refused = wrapped(psycopg2.OperationalError(REFUSED))
    try:
        first = attempts([refused] * 10)
        with pytest.raises(PersistenceError) as error:
            store._run('read volumes from', first)
        assert first.calls > 1
        assert str(error.value) == (
            "Can't read volumes from the state store %s: it is unreachable after 0.3 s (persistence.retry_window): "
            '(psycopg2.OperationalError) connection to server at "127.0.0.1", port 1 failed: Connection refused'
            % store.connection)
        assert error.value.cause is refused and make_url(postgresql_store_url).password not in str(error.value)

        # Later calls of the same task try once: a batch does not wait a window per item.
        second = attempts([refused])
        with pytest.raises(PersistenceError, match=r'it is still unreachable \(tried once: a whole '
                                                   r'persistence\.retry_window ran out earlier\)'):
            store._run('read volumes from', second)
        assert second.calls == 1

        # Once it answers, the window applies again.
        assert store._run('read volumes from', attempts(['back'])) == 'back'
        third = attempts([refused, 'ok'])
        assert store._run('read volumes from', third) == 'ok' and third.calls == 2
    finally:
        store.close()


def test_other_database_errors_are_not_retried_and_name_the_store(postgresql_store_url):
    store = persistence.SQLStore(postgresql_store_url, retry_window=30)
    try:
        unit = attempts([wrapped(psycopg2.ProgrammingError('syntax error at or near "SELEC"'),
                                 sa.exc.ProgrammingError)])
        with pytest.raises(PersistenceError) as error:
            store._run('read volumes from', unit)
        assert unit.calls == 1
        assert str(error.value) == ("Can't read volumes from the state store %s: (psycopg2.ProgrammingError) syntax "
                                    'error at or near "SELEC"' % store.connection)
    finally:
        store.close()


def test_sqlite_errors_are_never_retried(tmp_path):
    store = persistence.SQLStore('sqlite:///%s' % (tmp_path / 's.db'), retry_window=30)
    unit = attempts([wrapped(sqlite3.OperationalError('database is locked'), invalidated=True)])
    with pytest.raises(PersistenceError, match=r"^Can't write volume v1 to the state store sqlite:///.*: "
                                               r'\(sqlite3\.OperationalError\) database is locked$'):
        store._run('write volume v1 to', unit)
    assert unit.calls == 1
