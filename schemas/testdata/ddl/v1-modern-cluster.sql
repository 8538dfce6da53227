CREATE DATABASE IF NOT EXISTS `audit` ON CLUSTER `main`;

CREATE TABLE IF NOT EXISTS `audit`.`trail_local` ON CLUSTER `main`
(
    `row_id` String CODEC(ZSTD(1)),
    `chain` LowCardinality(String),
    `seq` UInt64 CODEC(Delta, ZSTD(1)),
    `time` DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    `command_id` String CODEC(ZSTD(1)),
    `step` LowCardinality(String),
    `detail` String CODEC(ZSTD(1)),
    `issuer` LowCardinality(String),
    `actor` LowCardinality(String),
    `approver` LowCardinality(String),
    `target_kind` LowCardinality(String),
    `user_id` String CODEC(ZSTD(1)),
    `token_id` String CODEC(ZSTD(1)),
    `session_id` String CODEC(ZSTD(1)),
    `client_id` String CODEC(ZSTD(1)),
    `include_downscoped` UInt8,
    `action` LowCardinality(String),
    `mode` LowCardinality(String),
    `rule_id` LowCardinality(String),
    `rule_version` UInt32,
    `severity` LowCardinality(String),
    `summary` String CODEC(ZSTD(1)),
    `evidence` Array(String) CODEC(ZSTD(1)),
    `first_event_time` DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    `last_event_time` DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    `detected_at` DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    `issued_at` DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    `expires_at` DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    `idp_status` UInt16,
    `idp_response` String CODEC(ZSTD(1)),
    `tokens_revoked` UInt32,
    `proof` String CODEC(ZSTD(1)),
    `attempts` UInt32,
    `detect_latency_ms` Int64 CODEC(ZSTD(1)),
    `revoke_latency_ms` Int64 CODEC(ZSTD(1)),
    `source_topic` LowCardinality(String),
    `source_partition` Int32,
    `source_offset` Int64 CODEC(Delta, ZSTD(1)),
    `prev_hash` String CODEC(ZSTD(1)),
    `hash` String CODEC(ZSTD(1)),
    INDEX idx_command_id command_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_token_id token_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_rule_id rule_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_chain chain TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/trail_local', '{replica}')
PARTITION BY toYYYYMM(time)
PRIMARY KEY (user_id, time)
ORDER BY (user_id, time, row_id, hash)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS `audit`.`trail` ON CLUSTER `main` AS `audit`.`trail_local`
ENGINE = Distributed('main', 'audit', 'trail_local', cityHash64(row_id));
