#!/bin/sh
# Runs as the postgres user: initialise $PGDATA on first start, then serve.
set -eu
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "initialising a new database in $PGDATA"
    # --no-sync: a development database need not survive a host crash during init.
    "$bin/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale --no-sync \
        --pwfile="$POSTGRES_PASSWORD_FILE" --auth-local=trust --auth-host=scram-sha-256
    # Other containers on the project network log in with the password.
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
