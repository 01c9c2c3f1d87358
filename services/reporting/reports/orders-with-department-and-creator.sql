-- Orders with their department's name (masterdata) and the creating user's display name (iam).
SELECT o.order_code, o.item_name, o.quantity, o.status, o.ordered_at,
       o.department_code, d.name AS department_name, u.display_name AS created_by_name,
       count(*) OVER () AS total
FROM core.orders o
LEFT JOIN masterdata.departments d ON d.code = o.department_code
LEFT JOIN iam.users u ON u.id = o.created_by
ORDER BY o.ordered_at DESC, o.order_code
LIMIT $1 OFFSET $2
