"""Events back: unsubscribes, bounces and complaints, and the suppression list they feed."""
