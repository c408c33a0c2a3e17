{#-
  The meter aggregations whose period usage is known hour by hour, so that a threshold on them
  alerts at the hour it is crossed (fct_usage_alerts); assert_usage_thresholds_can_alert warns of
  a threshold on any other (decision 124). One list for both, as SQL: `in {{ alertable_aggregations() }}`.
-#}
{% macro alertable_aggregations() -%}
('sum', 'count', 'max')
{%- endmacro %}
