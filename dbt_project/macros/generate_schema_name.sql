{#- Custom schemas are used as-is (raw, reference, staging, intermediate, billing) so analysts
    query billing.fct_invoices, not main_billing.fct_invoices. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
