{#-
  `not_null` on several columns of a model, in one query: it fails with every row that has no
  value in one of them (the row's values of those columns show which). A model's not-null
  columns are one test node instead of one each, as a key's `unique` and `not_null` are one
  `primary_key` (decision 89): on small data dbt spends about 15 ms of CPU per test node,
  whatever the query (decision 92).
-#}
{% test not_null_columns(model, columns) %}
select {{ columns | join(', ') }}
from {{ model }}
where {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}
