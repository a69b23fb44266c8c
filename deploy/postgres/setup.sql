-- PostgreSQL setup for the ecosync warehouse. Run once as a superuser:
--   psql -v ecosync_password="'a-long-random-password'" -f deploy/postgres/setup.sql
-- then put the same password in /etc/ecosync/ecosync.env as ECOSYNC_DB_PASSWORD and run
-- `ecosync db upgrade` (as the ecosync user) to create the tables.
--
-- One role owns the schema and runs the migrations and the daemon: ecosync creates and alters
-- its own tables on upgrade, so a separate read-only role is only for reporting tools.

\set ON_ERROR_STOP on

CREATE ROLE ecosync LOGIN PASSWORD :ecosync_password;
-- Per replica: a pool of 5 (15 under load) plus the connection holding the leader's
-- advisory lock; two replicas and a few admin commands stay below this.
ALTER ROLE ecosync CONNECTION LIMIT 50;

CREATE DATABASE ecosync OWNER ecosync ENCODING 'UTF8' TEMPLATE template0;

\connect ecosync

-- Tables live in the role's own schema, not in public.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA ecosync AUTHORIZATION ecosync;
ALTER ROLE ecosync IN DATABASE ecosync SET search_path = ecosync;
-- A statement that waits on a lock for minutes is a bug, not a workload.
ALTER ROLE ecosync IN DATABASE ecosync SET lock_timeout = '60s';
ALTER ROLE ecosync IN DATABASE ecosync SET idle_in_transaction_session_timeout = '10min';

-- Optional: a read-only role for BI tools reading the warehouse directly.
CREATE ROLE ecosync_reader NOLOGIN;
GRANT CONNECT ON DATABASE ecosync TO ecosync_reader;
GRANT USAGE ON SCHEMA ecosync TO ecosync_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE ecosync IN SCHEMA ecosync
    GRANT SELECT ON TABLES TO ecosync_reader;
