public enum NorBERTModule {}
