# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # Options shared by every module of the collection
    # (plugins/module_utils/ansible_module.py: cinderlib_argument_spec).
    DOCUMENTATION = r'''
options:
  backend:
    description:
      - The storage backend to work on.
      - Either a dict of Cinder driver options, which must include C(volume_backend_name) and
        C(volume_driver) (the Python path of the Cinder driver class, such as
        C(cinder.volume.drivers.lvm.LVMVolumeDriver), or its class name alone, such as
        C(LVMVolumeDriver), which is looked up among Cinder's drivers and must name only one;
        M(cinderlib.storage.cinderlib_drivers_info) lists them), or the name of a backend defined
        in O(config_file).
      - Answering an unchanged volume without starting Cinder (see M(cinderlib.storage.cinderlib_volume))
        and keeping the backend started in the warm worker (O(worker)) need the class path.
      - Option names and values are validated before the driver is instantiated, against the JSON
        Schema of the driver's own oslo.config options (its options and the options common to
        every Cinder backend, as M(cinderlib.storage.cinderlib_drivers_info) shows them) for
        types, choices, minimum and maximum. Values are read as Cinder reads C(cinder.conf), so strings
        such as V('5'), V('true') or V('a,b') are valid for integer, boolean and list options.
        Every problem is reported at once, each naming the option, what is wrong with its value
        and, for an unknown option, the closest known names; nothing is changed. See
        O(unknown_options).
      - Options that hold credentials (those the driver's oslo.config options mark secret, such as
        C(san_password) or C(replication_device), and anything named like a password, token,
        secret or key) are kept out of results, warnings, error messages, C(-vvv) output, diffs,
        facts and the state store; a message about such an option never shows its value.
      - Usually set once per play with C(module_defaults) for C(group/cinderlib.storage.cinderlib).
    type: raw
    required: true
  config_file:
    description:
      - A file defining backends, used when O(backend) is a name.
      - Either YAML with a C(backends) list of driver option dicts (the format of cinderlib's
        functional-test config), or an existing C(cinder.conf), whose C(enabled_backends)
        sections are the backends.
      - Defaults to C(/etc/cinderlib/backends.yml) when it exists (for non-root users,
        C($XDG_CONFIG_HOME/cinderlib/backends.yml) first).
    type: path
  persistence:
    description:
      - Where the collection keeps what it knows about volumes, snapshots and connections
        between tasks.
      - By default a SQLite file on the managed node, C(/var/lib/cinderlib/state.db) for root
        and C($XDG_STATE_HOME/cinderlib/state.db) for other users.
    type: dict
    suboptions:
      storage:
        description:
          - V(db) stores in the database at O(persistence.connection); V(memory_db) and
            V(memory) keep state only for the task (useful for tests).
        type: str
        choices: [db, memory_db, memory]
        default: db
      connection:
        description:
          - A SQLAlchemy URL, such as C(sqlite:////var/lib/cinderlib/state.db) or
            C(postgresql+psycopg2://user:password@host/db) for a store shared by several hosts.
          - The password in the URL is kept out of the output (C(no_log)); the rest of it may appear
            in messages, to say which store failed.
        type: str
      retry_window:
        description:
          - Seconds to keep trying a database server store (PostgreSQL) that can't be reached, from
            the first failed attempt of a read or a write; when not set, V(12). V(0) tries once.
          - Retried are the failures of a server that is down, starting, shutting down or unreachable
            (connection refused, connection lost, SQLSTATE class 08, 57P01 to 57P03), with waits of 0.25 s
            doubling up to 2 s. Each read or write transaction is retried whole; a transaction the
            connection loss interrupted was rolled back, and every write is keyed by the record's id, so
            a retry never makes a second record. A wrong password, a missing database and errors of the
            data are not retried, nor are SQLite files (they wait for each other's writes up to 60 s instead).
          - When the window runs out, the task fails with a message naming the store (its password
            masked). A write that failed before the driver was called leaves the backend unchanged;
            one after the driver changed the backend leaves the record as a crash at that point does
            (such as C(creating)), which M(cinderlib.storage.cinderlib_reconcile) settles once the store
            is back. After one window ran out, later reads and writes of the same task try once.
          - With O(driver_log_path), the retries are logged there.
          - A connection attempt that hangs (a host that drops packets) is bounded by the URL's
            C(connect_timeout) (such as C(?connect_timeout=5)), not by this window.
        type: float
  unknown_options:
    description:
      - What to do with an O(backend) option the driver does not know.
      - V(error) fails before anything is changed, naming the closest known options, so that a
        typo never silently falls back to a default on a production array; V(warn) only warns
        (other problems still fail).
    type: str
    choices: [error, warn]
    default: error
  output_all_backend_info:
    description:
      - Return the whole backend configuration in results, credentials included.
      - It is never written to the state store.
    type: bool
    default: false
  non_uuid_ids:
    description:
      - Allow volume ids that are not UUIDs (O(cinderlib.storage.cinderlib_volume#module:id)).
      - By default an id that is not a UUID fails before anything is opened; Cinder drivers name
        storage after ids, and some expect UUIDs.
    type: bool
    default: false
  coordination_url:
    description:
      - A tooz coordination URL, such as C(redis://HOST:6379), for the locks that keep concurrent
        runs from stepping on each other (Cinder's own driver locks and the collection's lock of
        each volume). Every host that manages the same backends with a shared O(persistence) store
        must use the same URL.
      - By default the locks are files on the managed node (C(/var/lib/cinderlib/locks) for root),
        which only serialize the runs of that host.
      - The Python package the URL needs (C(redis) for C(redis://)) must be installed for the
        module's interpreter. Treated as a secret, since it may hold a password.
    type: str
  driver_timeout:
    description:
      - The longest a single driver call (a create, a delete, an export...) may take, in seconds;
        one that has not returned by then is interrupted and the task fails saying so.
      - Cinder's drivers set no limit of their own on most array API calls, so an array that
        accepts a request and never answers would hold the task forever; this bounds it.
      - A volume whose create was interrupted is handled as any failed create (see
        M(cinderlib.storage.cinderlib_volume)); what the array did meanwhile is unknown, so the
        record never says C(available).
      - Copies (clones, volumes from snapshots on drivers that copy data) take as long as the data
        needs; leave room for them.
      - Unset or V(0) means no limit, as in Cinder.
    type: float
  driver_log_path:
    description:
      - A file on the managed node that gets the log of Cinder, the driver and os-brick for this
        task (cinderlib's C(disable_logs=False) with Cinder's C(log_file)), appended to; created
        readable by its owner only. Without it nothing is logged.
      - Secret values (the backend's credentials, passwords in URLs) are masked in it.
      - Only tasks that start the driver log; a task answered from the state store alone (an
        unchanged volume on LVM) writes nothing.
    type: path
  driver_log_level:
    description:
      - V(debug) logs every driver call and command (Cinder's C(debug)); V(info) what Cinder
        logs by default.
    type: str
    choices: [info, debug]
    default: info
  worker:
    description:
      - Whether a task that needs Cinder runs in the warm worker of the managed node, a process that keeps
        Cinder imported and backends initialised between tasks, so that a changing task does not start them
        again (an unchanged volume or snapshot is answered without Cinder either way).
      - The first task that needs it starts it, detached from the task; one worker per version of the
        collection, Python interpreter and user. Its directory, C(worker/) under the state directory
        (C(/var/lib/cinderlib/worker) for root, C($XDG_STATE_HOME/cinderlib/worker) for other users, or the
        C(CINDERLIB_WORKER_DIR) environment variable), is readable by its user only, and the worker serves
        only processes of its own user. Task arguments and credentials stay in memory.
      - Each task runs in a process of its own forked from the worker; its result, warnings, check mode and
        diff are those of a task run without it. A backend is kept initialised for the LVM driver with the
        default file locks; other backends are started by each task, with Cinder already imported.
      - If no worker can be started (for example the directory can't be created), the task runs in its own
        process and warns.
      - V(false) runs every task in its own process. Default V(true), or the C(CINDERLIB_WORKER) environment
        variable (V(1) or V(true) turns it on, V(0) or V(false) off).
    type: bool
  worker_idle_timeout:
    description:
      - Seconds the worker waits for another task before it exits (each task's value applies from then on).
        V(0) means no worker, as O(worker=false).
      - Default V(300), or the C(CINDERLIB_WORKER_IDLE_TIMEOUT) environment variable.
    type: int
  worker_timeout:
    description:
      - Seconds a task may run in the worker; a task still running then (a driver call that hangs) is killed
        and fails, saying so. What it was changing is then left as an interrupted run leaves it (see
        M(cinderlib.storage.cinderlib_reconcile)). V(0) means no limit.
      - Default V(3600), or the C(CINDERLIB_WORKER_TIMEOUT) environment variable. Raise it for long
        operations, such as cloning a large volume by copying its data.
    type: int
requirements:
  # ansible-doc joins these with commas: each one a phrase, no final period.
  - Python 3.11 on the managed node
  - C(cinder) 29.x and C(os-brick) 7.x for that Python (the C(cinderlib.storage.runtime) role installs them)
  - the command-line tools of the chosen driver (C(lvm2) for LVM)
notes:
  - Each task is a separate process, so state lives in O(persistence); the driver is initialised once
    per backend by the warm worker (O(worker)), or by every task that needs it without the worker.
  - Foreseeable errors (a bad option, a missing volume, a state store that can't be opened, a
    backend name not in O(config_file)...) fail the task with a one-line message saying what to
    change, and change nothing; the Python traceback is only in the result's C(exception), shown
    with C(-vvv).
'''

    # This host's os-brick connector properties
    # (plugins/module_utils/connection_state.py: connector_argument_spec).
    CONNECTOR = r'''
options:
  multipath:
    description:
      - Whether this node attaches volumes through multipath; exporting backends see it as the
        connector's C(multipath).
    type: bool
    default: false
  enforce_multipath:
    description:
      - With O(multipath), fail when multipathd is not running, rather than falling back to a
        single path.
    type: bool
    default: false
  my_ip:
    description:
      - The IP address to give as the connector's C(ip). By default the address of the interface
        of the default route.
    type: str
  host:
    description:
      - The host name to give as the connector's C(host). By default the node's host name.
      - One connection per volume and host; exports to the same host name are one connection.
    type: str
'''

    # For the modules that work on no backend (cinderlib_argument_spec(needs_backend=False));
    # listed before the shared fragment, so that its backend option is the one shown.
    NO_BACKEND = r'''
options:
  backend:
    description:
      - Ignored by this module (accepted so that C(module_defaults) of the action group apply).
    type: raw
    required: false
'''
