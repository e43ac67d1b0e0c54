-- client: pgwarden's own corpus of BI-tool metadata statements (placeholder; filled below)
-- case: SELECT 1
SELECT 1
