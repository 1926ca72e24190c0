-- 0008_ai: conversations of the assistant (mod_beautiful_ai) and what the
-- ledger of ai_interactions (0001) lacked: the cost of each call, its triage
-- outcome and the conversation it belongs to.

-- One row per conversation; its messages below. Both go with the account.
CREATE TABLE ai_conversations (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ai_conversations_title_length CHECK (length(title) BETWEEN 1 AND 200)
);
CREATE INDEX ai_conversations_user_idx ON ai_conversations (user_id, updated_at DESC);

CREATE TABLE ai_messages (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid        NOT NULL REFERENCES ai_conversations (id) ON DELETE CASCADE,
    role            text        NOT NULL,
    content         text        NOT NULL,
    -- The urgency a triaged or structured answer carried, else NULL.
    urgency         text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT ai_messages_role CHECK (role IN ('user', 'assistant')),
    CONSTRAINT ai_messages_content_length CHECK (length(content) BETWEEN 1 AND 100000),
    CONSTRAINT ai_messages_urgency CHECK (urgency IN ('emergency', 'urgent', 'soon', 'routine'))
);
CREATE INDEX ai_messages_conversation_idx ON ai_messages (conversation_id, created_at);

-- A triaged message is answered without any model: no model to name.
ALTER TABLE ai_interactions ALTER COLUMN model DROP NOT NULL;
ALTER TABLE ai_interactions
    ADD COLUMN conversation_id uuid REFERENCES ai_conversations (id) ON DELETE SET NULL,
    -- tokens x BeautifulAIPrice, in US dollars.
    ADD COLUMN cost_usd numeric(14, 8),
    -- 'none' (no red flag: the model answered or was asked), or the id of
    -- the triage rule that answered at once.
    ADD COLUMN triage text NOT NULL DEFAULT 'none',
    ADD CONSTRAINT ai_interactions_cost CHECK (cost_usd >= 0),
    ADD CONSTRAINT ai_interactions_triage_shape CHECK (triage ~ '^[a-z0-9_]{1,64}$');
CREATE INDEX ai_interactions_conversation_idx ON ai_interactions (conversation_id)
    WHERE conversation_id IS NOT NULL;
