#!/bin/sh
# The stand-in's kafka-run-class.sh: Java with Kafka's jars, a small heap for tools (KAFKA_HEAP_OPTS
# and KAFKA_OPTS as in Kafka's own script).
# shellcheck disable=SC2086 # the JVM options are lists, as in Kafka's own scripts
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:+UseSerialGC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/config-tools/log4j2.properties ${KAFKA_OPTS:-} \
  -cp '/opt/kafka/libs/*' "$@"
