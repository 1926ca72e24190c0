-- Starter communities for a new install or the dev stack.
-- Idempotent: run by `scripts/migrate --seed` as often as you like.
INSERT INTO communities (name, slug, description, cancer_type) VALUES
    ('Breast Cancer Support', 'breast-cancer-support',
     'Share experiences of diagnosis, treatment and life after breast cancer.', 'breast'),
    ('Lung Cancer Support', 'lung-cancer-support',
     'For people living with lung cancer and those who care for them.', 'lung'),
    ('Blood Cancers', 'blood-cancers',
     'Leukaemia, lymphoma and myeloma: questions, news and support.', 'blood'),
    ('Caregivers Circle', 'caregivers-circle',
     'A place for family members and friends who care for someone with cancer.', NULL),
    ('Survivors and Beyond', 'survivors-and-beyond',
     'Life after treatment: follow-ups, fear of recurrence, getting back to work.', NULL),
    ('Ask a Doctor', 'ask-a-doctor',
     'General questions answered by verified doctors. Not a substitute for your own care team.', NULL)
ON CONFLICT DO NOTHING;
