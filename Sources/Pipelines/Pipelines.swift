/// Task pipelines (text in, answers out). Being built: see issue 4.
public enum PipelinesModule {}
