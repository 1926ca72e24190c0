-- 0005_medical: share links for medical records (mod_beautiful_medical)
-- and the tamper-evident sealing of audit_logs (mod_beautiful_core).

-- ================================================================ records

-- SHA-1 of the plaintext, for FHIR's Attachment.hash in the export (the
-- integrity check on download stays SHA-256). NULL for records from before.
ALTER TABLE medical_records ADD COLUMN sha1 bytea;
ALTER TABLE medical_records ADD CONSTRAINT medical_records_sha1_length CHECK (octet_length(sha1) = 20);

-- ================================================================ share links

-- Like SMART Health Links: a random token in a URL lets anyone holding it
-- read one record, until it expires, runs out of uses or is revoked. Only
-- the SHA-256 of the token is stored; the passcode, when set, as argon2id.
CREATE TABLE medical_share_links (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    record_id        uuid        NOT NULL REFERENCES medical_records (id) ON DELETE CASCADE,
    created_by       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash       text        NOT NULL,
    passcode_hash    text,
    expires_at       timestamptz NOT NULL,
    max_uses         integer,
    uses             integer     NOT NULL DEFAULT 0,
    failed_passcodes integer     NOT NULL DEFAULT 0,
    revoked_at       timestamptz,
    revoke_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT medical_share_links_token_hash CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT medical_share_links_expiry     CHECK (expires_at > created_at),
    CONSTRAINT medical_share_links_max_uses   CHECK (max_uses BETWEEN 1 AND 1000),
    CONSTRAINT medical_share_links_uses       CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
    CONSTRAINT medical_share_links_revocation CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
    CONSTRAINT medical_share_links_reason     CHECK (revoke_reason IN ('owner', 'passcode', 'record_deleted'))
);
CREATE UNIQUE INDEX medical_share_links_token_key ON medical_share_links (token_hash);
CREATE INDEX medical_share_links_record_idx ON medical_share_links (record_id, created_at DESC);

-- ================================================================ audit seals

-- A background task seals each new batch of audit rows: one audit_seals row
-- whose hash covers the previous seal's hash and the hashes of the batch's
-- rows (kept in audit_seal_rows), so a row changed, deleted or slipped in
-- afterwards shows (scripts/audit-verify). Inserts into audit_logs take no
-- lock for this; only the sealing passes are serialised (advisory lock).
--
-- A row's hash is sha256(core || user || ip || user agent || details): core
-- is sha256 of the fields that never change; the other four are kept apart
-- (sha256 of the value, NULL when it was NULL) because the append-only
-- policy lets them be cleared (ON DELETE SET NULL, erasure), which the
-- verifier then reports as a redaction, not as tampering.
CREATE TABLE audit_seals (
    seq              bigint      PRIMARY KEY,
    sealed_at        timestamptz NOT NULL DEFAULT now(),
    row_count        integer     NOT NULL,
    first_created_at timestamptz NOT NULL,
    last_created_at  timestamptz NOT NULL,
    prev_hash        bytea       NOT NULL,
    hash             bytea       NOT NULL,
    CONSTRAINT audit_seals_hash_length CHECK (octet_length(hash) = 32 AND octet_length(prev_hash) = 32),
    CONSTRAINT audit_seals_rows CHECK (row_count > 0)
);

CREATE TABLE audit_seal_rows (
    audit_id         uuid        NOT NULL,
    audit_created_at timestamptz NOT NULL,
    seal_seq         bigint      NOT NULL REFERENCES audit_seals (seq),
    core_hash        bytea       NOT NULL,
    user_hash        bytea,
    ip_hash          bytea,
    ua_hash          bytea,
    details_hash     bytea,
    PRIMARY KEY (audit_id, audit_created_at)
);
CREATE INDEX audit_seal_rows_seal_idx ON audit_seal_rows (seal_seq);

-- The hashes of one audit row, as the sealer and the verifier compute them.
CREATE FUNCTION audit_row_core_hash(a audit_logs) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(convert_to(concat_ws(E'\x1f', a.id::text,
        to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        a.action, coalesce(a.resource_type, E'\x1e'), coalesce(a.resource_id, E'\x1e'),
        a.outcome::text, coalesce(a.request_id, E'\x1e')), 'UTF8'))
$$;

CREATE FUNCTION audit_value_hash(v text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN NULL ELSE sha256(convert_to(v, 'UTF8')) END
$$;

-- The row hash from its parts (NULL parts as 32 zero bytes).
CREATE FUNCTION audit_row_hash(core bytea, u bytea, ip bytea, ua bytea, d bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(core || coalesce(u, decode(repeat('00', 32), 'hex'))
                  || coalesce(ip, decode(repeat('00', 32), 'hex'))
                  || coalesce(ua, decode(repeat('00', 32), 'hex'))
                  || coalesce(d, decode(repeat('00', 32), 'hex')))
$$;

-- Seals at most max_rows unsealed rows (oldest first) into the next seal.
-- Rows are looked for from an hour before the last seal's newest row on, so
-- a row whose transaction committed late is still sealed. Returns the
-- number of rows sealed (0: nothing to do, or another pass holds the lock).
CREATE FUNCTION audit_seal_batch(max_rows integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    last_seal audit_seals;
    next_seq  bigint;
    prev      bytea;
    horizon   timestamptz;
    n         integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('audit_seal_batch')) THEN
        RETURN 0;
    END IF;
    SELECT * INTO last_seal FROM audit_seals ORDER BY seq DESC LIMIT 1;
    next_seq := coalesce(last_seal.seq, 0) + 1;
    prev := coalesce(last_seal.hash, decode(repeat('00', 32), 'hex'));
    horizon := coalesce(last_seal.last_created_at - interval '1 hour', '-infinity');

    CREATE TEMP TABLE IF NOT EXISTS audit_seal_batch_rows (
        audit_id uuid, audit_created_at timestamptz, core_hash bytea, user_hash bytea,
        ip_hash bytea, ua_hash bytea, details_hash bytea) ON COMMIT DROP;
    INSERT INTO audit_seal_batch_rows
        SELECT a.id, a.created_at, audit_row_core_hash(a), audit_value_hash(a.user_id::text),
               audit_value_hash(a.ip_address::text), audit_value_hash(a.user_agent),
               audit_value_hash(a.details::text)
          FROM audit_logs a
         WHERE a.created_at >= horizon
           AND NOT EXISTS (SELECT 1 FROM audit_seal_rows s
                            WHERE s.audit_id = a.id AND s.audit_created_at = a.created_at)
         ORDER BY a.created_at, a.id
         LIMIT max_rows;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        DROP TABLE audit_seal_batch_rows;
        RETURN 0;
    END IF;
    INSERT INTO audit_seals (seq, row_count, first_created_at, last_created_at, prev_hash, hash)
        SELECT next_seq, n, min(b.audit_created_at), max(b.audit_created_at), prev,
               sha256(prev || int8send(next_seq)
                      || string_agg(audit_row_hash(b.core_hash, b.user_hash, b.ip_hash,
                                                   b.ua_hash, b.details_hash),
                                    ''::bytea ORDER BY b.audit_created_at, b.audit_id))
          FROM audit_seal_batch_rows b;
    INSERT INTO audit_seal_rows (audit_id, audit_created_at, seal_seq, core_hash, user_hash,
                                 ip_hash, ua_hash, details_hash)
        SELECT audit_id, audit_created_at, next_seq, core_hash, user_hash, ip_hash, ua_hash,
               details_hash FROM audit_seal_batch_rows;
    DROP TABLE audit_seal_batch_rows;
    RETURN n;
END
$$;
