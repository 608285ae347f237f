public enum TokenizersModule {}
