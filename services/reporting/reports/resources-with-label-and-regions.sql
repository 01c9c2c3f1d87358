-- Resources with their label's name and the region names of their addresses (core + masterdata).
SELECT r.reference_number, r.first_name, r.last_name, r.label_code, l.label AS label_name,
       coalesce(array_agg(DISTINCT g.name) FILTER (WHERE g.name IS NOT NULL), '{}') AS region_names,
       count(*) OVER () AS total
FROM core.resources r
LEFT JOIN masterdata.labels l ON l.code = r.label_code
LEFT JOIN core.resource_addresses a ON a.resource_id = r.id
LEFT JOIN masterdata.regions g ON g.code = a.region_code
GROUP BY r.id, r.reference_number, r.first_name, r.last_name, r.label_code, l.label
ORDER BY r.reference_number
LIMIT $1 OFFSET $2
