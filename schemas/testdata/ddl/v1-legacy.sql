CREATE DATABASE IF NOT EXISTS `audit`;

CREATE TABLE IF NOT EXISTS `audit`.`trail`
(
    `row_id` String,
    `chain` String,
    `seq` UInt64,
    `time` DateTime('UTC'),
    `command_id` String,
    `step` String,
    `detail` String,
    `issuer` String,
    `actor` String,
    `approver` String,
    `target_kind` String,
    `user_id` String,
    `token_id` String,
    `session_id` String,
    `client_id` String,
    `include_downscoped` UInt8,
    `action` String,
    `mode` String,
    `rule_id` String,
    `rule_version` UInt32,
    `severity` String,
    `summary` String,
    `evidence` Array(String),
    `first_event_time` DateTime('UTC'),
    `last_event_time` DateTime('UTC'),
    `detected_at` DateTime('UTC'),
    `issued_at` DateTime('UTC'),
    `expires_at` DateTime('UTC'),
    `idp_status` UInt16,
    `idp_response` String,
    `tokens_revoked` UInt32,
    `proof` String,
    `attempts` UInt32,
    `detect_latency_ms` Int64,
    `revoke_latency_ms` Int64,
    `source_topic` String,
    `source_partition` Int32,
    `source_offset` Int64,
    `prev_hash` String,
    `hash` String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
PRIMARY KEY (user_id, time)
ORDER BY (user_id, time, row_id, hash)
SETTINGS index_granularity = 1024;
