"""The store's schema: forward-only migrations, plain SQL, each applied once under its name.

``MIGRATIONS`` lists them oldest first; a store applies those it has not recorded (in its
``schema_migrations`` table, each in its own transaction) when it opens, and its schema version
is how many it has applied. Never edit a migration that has shipped: add a new one at the end::

    Migration(
        "m004_notes",
        "CREATE TABLE notes (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, ...);"
        "CREATE INDEX notes_order ON notes (created_at, seq)",
    )

Ordering columns: every table has ``seq`` (an always-increasing integer key; ``BIGSERIAL`` on
Postgres) next to ``created_at`` (Unix ms), and lists order by ``(created_at, seq)`` so objects made
in the same millisecond keep their insertion order. JSON values are stored as text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    """One named schema change: SQL statements separated by ``;``."""

    name: str
    sql: str

    def statements(self) -> list[str]:
        return [s.strip() for s in self.sql.split(";") if s.strip()]


#: One tool call entry of a step without its ``shapes`` (m004), ``type`` from the DashScope shape.
_NEUTRAL_CALL = """
    CASE WHEN json_type(call.value, '$.shapes') IS NULL THEN json(call.value)
    ELSE json_remove(json_set(call.value, '$.type', coalesce(
        json_extract(call.value, '$.shapes.dashscope.type'),
        json_extract(call.value, '$.type'))), '$.shapes')
    END"""

#: One tool entry with a plug-in token that is not a ``${VAR}`` reference replaced by
#: ``[not stored]`` (m005; ``tools.plugins.NOT_STORED``): tokens were stored as sent before.
_SEALED_TOOL = """
    CASE WHEN coalesce(json_extract(tool.value, '$.auth.user_token'), '') = ''
              OR json_extract(tool.value, '$.auth.user_token') GLOB '${*}'
    THEN json(tool.value)
    ELSE json_set(tool.value, '$.auth.user_token', '[not stored]')
    END"""

#: Every migration, oldest first.
MIGRATIONS: list[Migration] = [
    Migration(
        "m001_assistants_threads_messages",
        """
        CREATE TABLE assistants (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            model TEXT NOT NULL,
            name TEXT,
            description TEXT,
            instructions TEXT,
            tools TEXT NOT NULL,
            file_ids TEXT NOT NULL,
            tool_resources TEXT NOT NULL,
            metadata TEXT NOT NULL,
            temperature REAL,
            top_p REAL,
            top_k INTEGER,
            max_tokens INTEGER,
            response_format TEXT
        );
        CREATE INDEX assistants_order ON assistants (created_at, seq);
        CREATE TABLE threads (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            metadata TEXT NOT NULL,
            tool_resources TEXT NOT NULL
        );
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            thread_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            assistant_id TEXT,
            run_id TEXT,
            file_ids TEXT NOT NULL,
            attachments TEXT NOT NULL,
            metadata TEXT NOT NULL,
            status TEXT NOT NULL,
            incomplete_details TEXT,
            completed_at BIGINT,
            incomplete_at BIGINT
        );
        CREATE INDEX messages_order ON messages (thread_id, created_at, seq)
        """,
    ),
    Migration(
        "m002_runs_steps_events",
        """
        CREATE TABLE runs (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            thread_id TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL,
            instructions TEXT NOT NULL,
            additional_instructions TEXT,
            tools TEXT NOT NULL,
            file_ids TEXT NOT NULL,
            metadata TEXT NOT NULL,
            temperature REAL,
            top_p REAL,
            top_k INTEGER,
            max_tokens INTEGER,
            max_prompt_tokens INTEGER,
            max_completion_tokens INTEGER,
            truncation_strategy TEXT,
            tool_choice TEXT,
            parallel_tool_calls INTEGER NOT NULL,
            response_format TEXT,
            required_action TEXT,
            last_error TEXT,
            incomplete_details TEXT,
            usage TEXT,
            started_at BIGINT,
            expires_at BIGINT,
            cancelled_at BIGINT,
            failed_at BIGINT,
            completed_at BIGINT,
            incomplete_at BIGINT,
            model_calls INTEGER NOT NULL
        );
        CREATE INDEX runs_order ON runs (thread_id, created_at, seq);
        CREATE INDEX runs_status ON runs (status, expires_at);
        CREATE TABLE run_steps (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            run_id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            type TEXT NOT NULL,
            status TEXT NOT NULL,
            step_details TEXT NOT NULL,
            last_error TEXT,
            usage TEXT,
            metadata TEXT NOT NULL,
            completed_at BIGINT,
            cancelled_at BIGINT,
            failed_at BIGINT,
            expired_at BIGINT,
            thread_position INTEGER NOT NULL
        );
        CREATE INDEX run_steps_order ON run_steps (run_id, created_at, seq);
        CREATE INDEX run_steps_thread ON run_steps (thread_id, seq);
        CREATE TABLE run_events (
            seq INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            event TEXT NOT NULL,
            data TEXT NOT NULL
        );
        CREATE INDEX run_events_run ON run_events (run_id, seq);
        CREATE INDEX run_events_age ON run_events (created_at)
        """,
    ),
    # Files the built-in tools make (images), bytes included; deleted with their thread.
    Migration(
        "m003_files",
        """
        CREATE TABLE files (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            thread_id TEXT,
            run_id TEXT,
            data BLOB NOT NULL
        );
        CREATE INDEX files_order ON files (created_at, seq);
        CREATE INDEX files_thread ON files (thread_id)
        """,
    ),
    # Built-in tool calls kept a rendered ``shapes`` entry per dialect beside their neutral
    # fields; the dialects render those fields now. Drop ``shapes`` from the calls of stored
    # steps and of the steps in the event log, keeping the tool's own type (the DashScope
    # shape's) where the entry had the type the assistant gave (e.g. the alias ``wanx``).
    Migration(
        "m004_neutral_tool_calls",
        f"""
        UPDATE run_steps SET step_details = (
            SELECT json_set(run_steps.step_details, '$.tool_calls',
                            json_group_array({_NEUTRAL_CALL}))
            FROM json_each(run_steps.step_details, '$.tool_calls') AS call)
        WHERE step_details LIKE '%"shapes"%';
        UPDATE run_events SET data = (
            SELECT json_set(run_events.data, '$.record.step_details.tool_calls',
                            json_group_array({_NEUTRAL_CALL}))
            FROM json_each(run_events.data, '$.record.step_details.tool_calls') AS call)
        WHERE json_extract(data, '$.kind') = 'step' AND data LIKE '%"shapes"%'
        """,
    ),
    # Plug-in tokens sent in tool entries were stored as sent; the server now keeps only a
    # reference to its environment variable. Forget the tokens older stores still hold: in
    # assistants, runs and the run snapshots of the event log.
    Migration(
        "m005_plugin_tokens_not_stored",
        f"""
        UPDATE assistants SET tools = (
            SELECT json_group_array({_SEALED_TOOL}) FROM json_each(assistants.tools) AS tool)
        WHERE tools LIKE '%user_token%';
        UPDATE runs SET tools = (
            SELECT json_group_array({_SEALED_TOOL}) FROM json_each(runs.tools) AS tool)
        WHERE tools LIKE '%user_token%';
        UPDATE run_events SET data = (
            SELECT json_set(run_events.data, '$.record.tools', json_group_array({_SEALED_TOOL}))
            FROM json_each(run_events.data, '$.record.tools') AS tool)
        WHERE json_extract(data, '$.kind') = 'run' AND data LIKE '%user_token%'
        """,
    ),
    # Vector stores (server/knowledge/records.py): stores, their files, batches, chunks;
    # uploaded files may expire; uploads in parts (OpenAI's Uploads API).
    Migration(
        "m006_vector_stores",
        """
        CREATE TABLE vector_stores (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            name TEXT,
            metadata TEXT NOT NULL,
            expires_after TEXT,
            expires_at BIGINT,
            last_active_at BIGINT,
            chunking_strategy TEXT
        );
        CREATE INDEX vector_stores_order ON vector_stores (created_at, seq);
        CREATE TABLE vector_store_files (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            vector_store_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            status TEXT NOT NULL,
            usage_bytes BIGINT NOT NULL,
            last_error TEXT,
            attributes TEXT NOT NULL,
            chunking_strategy TEXT,
            batch_id TEXT
        );
        CREATE INDEX vector_store_files_order
            ON vector_store_files (vector_store_id, created_at, seq);
        CREATE INDEX vector_store_files_file ON vector_store_files (file_id);
        CREATE INDEX vector_store_files_status ON vector_store_files (status);
        CREATE TABLE vector_store_file_batches (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            vector_store_id TEXT NOT NULL,
            status TEXT NOT NULL,
            file_ids TEXT NOT NULL
        );
        CREATE INDEX vector_store_file_batches_order ON vector_store_file_batches (created_at, seq);
        CREATE TABLE vector_store_chunks (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            vector_store_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            chunks TEXT NOT NULL
        );
        CREATE INDEX vector_store_chunks_order
            ON vector_store_chunks (vector_store_id, created_at, seq);
        ALTER TABLE files ADD COLUMN expires_at BIGINT;
        CREATE TABLE uploads (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            mime_type TEXT NOT NULL,
            expires_at BIGINT NOT NULL,
            status TEXT NOT NULL,
            file_id TEXT
        );
        CREATE TABLE upload_parts (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            upload_id TEXT NOT NULL,
            data BLOB NOT NULL
        );
        CREATE INDEX upload_parts_upload ON upload_parts (upload_id, created_at, seq)
        """,
    ),
    # Indexes for every lookup the server makes that the tables above did not cover: thread
    # deletion over the event log, a thread's newest messages (bounded history, thread
    # position), and the tool steps after a given message.
    Migration(
        "m007_lookup_indexes",
        """
        CREATE INDEX run_events_thread ON run_events (thread_id);
        CREATE INDEX messages_thread_seq ON messages (thread_id, seq);
        CREATE INDEX run_steps_position ON run_steps (thread_id, thread_position)
        """,
    ),
    # Responses API: a response is a run on a thread; this row keeps what only the Responses
    # surface knows (whether it is stored, its chain, its input items, its request settings).
    Migration(
        "m008_responses",
        """
        CREATE TABLE responses (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            thread_id TEXT NOT NULL,
            stored INTEGER NOT NULL,
            previous_response_id TEXT,
            conversation INTEGER NOT NULL,
            input_ids TEXT NOT NULL,
            settings TEXT NOT NULL
        );
        CREATE INDEX responses_thread ON responses (thread_id, seq)
        """,
    ),
]
