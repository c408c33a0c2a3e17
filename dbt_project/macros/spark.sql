{#-
  What the project needs from a Spark session (dbt-spark, and dbt-databricks, whose dispatch
  falls back to spark__), checked at the start of every run (on-run-start) so that no model is
  ever built without it:
    spark.sql.decimalOperations.allowPrecisionLoss = false   products and quotients of
        DECIMAL(38,10) keep their scale instead of being cut to 6 decimal places
    spark.sql.ansi.enabled = true    overflow and bad casts fail instead of becoming NULL
    spark.sql.session.timeZone = UTC, spark.sql.timestampType = TIMESTAMP_NTZ
        timestamps as DuckDB has them: UTC wall-clock time, no zone
  The `spark` output of profiles.yml sets them (server_side_parameters); run dbt through
  `billing-dbt`, which keeps the profile's ANSI mode (dbt-spark forces it off: see
  dagster_billing/lib/dbt_spark.py). On a cluster, set them in the cluster or warehouse config.
-#}
{% macro check_engine_settings() -%}
    {%- if execute -%}
        {%- do adapter.dispatch('check_engine_settings', 'billing')() -%}
    {%- endif -%}
{%- endmacro %}

{% macro default__check_engine_settings() -%}
{%- endmacro %}

{% macro spark__check_engine_settings() -%}
    {%- set required = {
        'spark.sql.decimalOperations.allowPrecisionLoss': 'false',
        'spark.sql.ansi.enabled': 'true',
        'spark.sql.session.timeZone': 'utc',
        'spark.sql.timestampType': 'timestamp_ntz',
    } -%}
    {%- set wrong = [] -%}
    {%- for key, expected in required.items() -%}
        {%- set actual = run_query('set ' ~ key).columns[1].values()[0] | string | lower -%}
        {%- if actual != expected -%}
            {%- do wrong.append(key ~ ' is ' ~ actual ~ ', must be ' ~ expected) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if wrong -%}
        {{ exceptions.raise_compiler_error(
            'This Spark session cannot bill exactly: ' ~ wrong | join('; ')
            ~ '. Set them in the profile (server_side_parameters) or the cluster, and run dbt'
            ~ ' through billing-dbt, which keeps the profile\'s ANSI mode (docs/spark.md).'
        ) }}
    {%- endif -%}
{%- endmacro %}

{#-
  Seeds on Spark: dbt-spark's loader sends values as query bindings, which its session method
  turns into Python floats (0.0000001 survives, 12345678.0123456789 does not) and empty cells
  into the text 'None' (which ANSI mode refuses to cast to a date). This one writes each value as
  a string literal cast to the column's type, and empty cells as NULL.
-#}
{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set types = [] -%}
    {%- for column_name in agate_table.column_names -%}
        {%- do types.append(spark_type(column_override.get(column_name, adapter.convert_type(agate_table, loop.index0)))) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for value in row -%}
                    {%- if value is none -%}null{%- else -%}cast({{ spark_string_literal(value) }} as {{ types[loop.index0] }}){%- endif -%}
                    {%- if not loop.last %}, {% endif -%}
                {%- endfor -%}){%- if not loop.last %},{% endif %}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}{%- do statements.append(sql) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(statements[0] if statements else '') }}
{%- endmacro %}

{% macro spark_string_literal(value) -%}
    '{{ value | string | replace('\\', '\\\\') | replace("'", "\\'") }}'
{%- endmacro %}

{#-
  dbt's date macros on Spark return Spark's TIMESTAMP, the session-zoned type (LTZ), which
  Parquet stores as an instant and DuckDB reads back as TIMESTAMP WITH TIME ZONE. These keep
  the project's timestamps without time zone (TIMESTAMP_NTZ, as on DuckDB), so the tables of both
  engines have the same types and values.
-#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, cast({{ interval }} as bigint), cast({{ from_date_or_timestamp }} as timestamp_ntz))
{%- endmacro %}

{% macro spark__date_trunc(datepart, date) -%}
    cast(date_trunc('{{ datepart }}', {{ date }}) as timestamp_ntz)
{%- endmacro %}

{#-
  Seed tables on Spark: dbt-spark's create_csv_table with the seeds' column_types in Spark's
  spelling (dbt_project.yml writes `varchar`, for DuckDB and PostgreSQL).
-#}
{% macro spark__create_csv_table(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set quote_seed_column = model['config'].get('quote_columns', None) -%}
    {%- set sql -%}
        create table {{ this.render() }} (
            {%- for col_name in agate_table.column_names -%}
                {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                {%- set type = spark_type(column_override.get(col_name, inferred_type)) -%}
                {{ adapter.quote_seed_column(col_name | string, quote_seed_column) }} {{ type }}
                {%- if not loop.last -%}, {% endif -%}
            {%- endfor -%}
        )
        {{ file_format_clause() }}
        {{ partition_cols(label="partitioned by") }}
        {{ clustered_cols(label="clustered by") }}
        {{ location_clause() }}
        {{ comment_clause() }}
    {%- endset -%}
    {%- call statement('_') -%}
        {{ sql }}
    {%- endcall -%}
    {{ return(sql) }}
{%- endmacro %}

{#- A column type as Spark spells it: `varchar` without a length (DuckDB, PostgreSQL) is `string`. -#}
{% macro spark_type(data_type) -%}
    {{ return('string' if data_type | string | trim | lower in ('varchar', 'text') else data_type) }}
{%- endmacro %}

{#- dbt.cast, also behind contract checks (get_empty_schema_sql) of the models whose YAML types
    are written `varchar`. -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ spark_type(type) }})
{%- endmacro %}

{#- dbt.safe_cast, which dbt's unit-test fixtures use with the seeds' `varchar` column types. -#}
{% macro spark__safe_cast(field, type) -%}
    cast({{ field }} as {{ spark_type(type) }})
{%- endmacro %}
