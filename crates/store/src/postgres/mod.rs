pub struct PgStore; pub struct PostgresConfig;
