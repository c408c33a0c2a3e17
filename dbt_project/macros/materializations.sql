{#-
  Tables on DuckDB in two statements (decision 92). dbt-duckdb's own table materialization
  builds the new table under a temporary name, renames the old one to a backup, renames the new
  one into place and drops the backup, with a dozen cache and catalog look-ups around that
  (foreign keys, indexes, grants, docs, DuckLake): about 55 ms of dbt's CPU per model on small
  data, and a pipeline run builds 51 tables. DuckDB's DDL is transactional, so dropping the old
  table and creating the new one in one transaction is as safe: a build that fails rolls back
  and leaves the old table as it was. An enforced contract is still checked (create_table_as).
  What this leaves out (grants, indexes, persisted docs, Python models) is refused, not ignored.
  Other engines (Spark, Postgres) keep their adapter's materialization.
-#}
{% materialization table, adapter='duckdb' %}
    {%- if model['language'] != 'sql' or config.get('grants') or config.get('indexes')
        or config.get('persist_docs') -%}
        {{ exceptions.raise_compiler_error(
            this ~ ": the project's DuckDB table materialization (macros/materializations.sql) "
            ~ "builds SQL models without grants, indexes or persisted docs") }}
    {%- endif -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {% call statement('main') -%}
        {%- if existing_relation is not none -%}
            {{ get_drop_sql(existing_relation) }};
        {%- endif %}
        {{ create_table_as(False, target_relation, sql) }}
    {%- endcall %}
    {% if existing_relation is not none %}{% do adapter.cache_dropped(existing_relation) %}{% endif %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
